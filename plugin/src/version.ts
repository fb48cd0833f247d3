// Kept equal to package.json's version (checked by a unit test).
export const version = '0.1.0'
