/**
 * Colours of the four bases for the in-silico mutagenesis track (A green, C blue, G orange,
 * T red, anything else grey), and the jexl function that gives a feature its base's colour:
 * `jexl:cistrackBaseColor(feature)` in a wiggle renderer's `color` slot.
 */
import type { Feature } from '@jbrowse/core/util'

export const BASE_COLORS: Readonly<Record<string, string>> = {
  A: '#2ca02c',
  C: '#1f5fd6',
  G: '#f28e00',
  T: '#d62728',
}

/** Bases other than A, C, G, T (N and the like). */
export const OTHER_BASE_COLOR = '#9e9e9e'

/** The name of the jexl function the plugin registers. */
export const BASE_COLOR_FUNCTION = 'cistrackBaseColor'

export function baseColor(base: unknown) {
  return BASE_COLORS[String(base ?? '').toUpperCase()] ?? OTHER_BASE_COLOR
}

/** The colour slot value that colours a wiggle track's bars by base. */
export const BASE_COLOR_EXPRESSION = `jexl:${BASE_COLOR_FUNCTION}(feature)`

/**
 * `cistrackBaseColor(feature)`: the colour of the feature's `base`.
 *
 * Without a feature it returns its own expression. JBrowse 4.1's LinearWiggleDisplay reads the
 * renderer's `color` slot once on the main thread, with no feature, and hands the result to the
 * renderer as a constant: a colour there would paint every bar alike. Handing back the
 * expression lets the renderer, which evaluates a `jexl:` colour for each feature, do so.
 */
export function featureBaseColor(feature: Pick<Feature, 'get'> | undefined) {
  if (feature === undefined || feature === null) {
    return BASE_COLOR_EXPRESSION
  }
  return baseColor(feature.get('base'))
}
