/**
 * How an enhancer-gene arc looks, by its score (CistrackArcRenderer; the igv.js page's
 * tracks.js draws its links the same way).
 *
 * Purple, more opaque and wider as the score (the E2G probability, 0-1) rises; a link below
 * the calibrated threshold (shown when `minScore` is lower than the threshold) is grey.
 */
import type { Feature } from '@jbrowse/core/util'

function score01(feature: Feature) {
  const score = Number(feature.get('score'))
  return Number.isFinite(score) ? Math.min(1, Math.max(0, score)) : 0
}

/** Below the calibrated threshold the answer carried (none from older daemons). */
function belowThreshold(feature: Feature) {
  const threshold = feature.get('E2G threshold') as number | undefined
  return (
    typeof threshold === 'number' && Number(feature.get('score')) < threshold
  )
}

export function linkColor(feature: Feature) {
  if (belowThreshold(feature)) {
    return 'rgba(117, 117, 117, 0.45)'
  }
  const alpha = 0.35 + 0.65 * score01(feature)
  return `rgba(106, 27, 154, ${alpha.toFixed(2)})`
}

/** Stroke width in px: 1 at score 0 to 5 at score 1. */
export function linkWidth(feature: Feature) {
  return Math.round((1 + 4 * score01(feature)) * 10) / 10
}
