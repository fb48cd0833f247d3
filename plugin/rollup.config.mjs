// The plugin as one UMD file that JBrowse Web and the embedded views load at run time.
// React, MUI, mobx and @jbrowse/core come from the JBrowseExports global that JBrowse sets up:
// externalGlobals turns those imports into JBrowseExports[...] lookups instead of bundling a
// second copy (a second React breaks hooks; a second @jbrowse/core breaks instanceof checks).
import commonjs from '@rollup/plugin-commonjs'
import nodeResolve from '@rollup/plugin-node-resolve'
import replace from '@rollup/plugin-replace'
import terser from '@rollup/plugin-terser'
import typescript from '@rollup/plugin-typescript'
import JBrowseReExports from '@jbrowse/core/ReExports/list'
import externalGlobals from 'rollup-plugin-external-globals'

const isProd = process.env.NODE_ENV === 'production'

const globals = {}
for (const name of JBrowseReExports) {
  globals[name] = `JBrowseExports["${name}"]`
}
// v4 package name; JBrowse exports it under the old one.
globals['@jbrowse/mobx-state-tree'] = 'JBrowseExports["mobx-state-tree"]'

export default {
  input: 'src/index.ts',
  output: {
    // JBrowse reads the plugin off window[name] after the UMD script loads.
    name: 'JBrowsePluginCistrack',
    file: isProd
      ? 'dist/jbrowse-plugin-cistrack.umd.production.min.js'
      : 'dist/jbrowse-plugin-cistrack.umd.development.js',
    format: 'umd',
    // { default: PluginClass }, which JBrowse's plugin loader expects.
    exports: 'named',
    sourcemap: true,
  },
  plugins: [
    externalGlobals(globals),
    nodeResolve({ extensions: ['.js', '.ts'] }),
    commonjs(),
    typescript({
      tsconfig: './tsconfig.json',
      include: ['src/**/*.ts'],
      exclude: ['src/**/*.test.ts', 'src/testUtil.ts'],
      declaration: false,
      outDir: 'dist',
    }),
    replace({
      'process.env.NODE_ENV': JSON.stringify(
        process.env.NODE_ENV || 'development',
      ),
      preventAssignment: true,
    }),
    ...(isProd ? [terser()] : []),
  ],
}
