// Browser tests (e2e/): the real daemon on the demo build, the example pages served on
// localhost, headless Debian Chromium driven by playwright-core. `make test-browser` builds what
// they need first. Every wait inside is bounded; these limits are the outer bounds.
import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['e2e/**/*.test.ts'],
    testTimeout: 240_000,
    hookTimeout: 600_000,
    fileParallelism: false,
    reporters: ['verbose'],
  },
})
