//! Builds the JBrowse example page into dist/ (`npm run build`); `make demo` serves it.
import react from '@vitejs/plugin-react'
import { defineConfig } from 'vite'

export default defineConfig({
  plugins: [react()],
  base: './',
  build: {
    outDir: 'dist',
    chunkSizeWarningLimit: 10_000,
    reportCompressedSize: false,
  },
})
