// Unit tests: the adapters against recorded daemon answers (src/**/*.test.ts), fetch stubbed.
// The browser tests against a real daemon use vitest.config.e2e.ts.
import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    environment: 'node',
    include: ['src/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
  },
})
