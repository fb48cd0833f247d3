// Lint for the plugin sources and browser tests (typescript-eslint, as the JBrowse plugin
// template; type-aware rules left out to keep `make test` quick on two cores).
import eslint from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['dist/**', 'e2e-artifacts/**', 'node_modules/**'] },
  eslint.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      curly: 'error',
      'no-console': ['error', { allow: ['error', 'warn'] }],
    },
  },
)
