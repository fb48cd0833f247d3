/**
 * Configuration slots every cistrack adapter has (the daemon connection), and the cell-group
 * slot of the adapters that read `/enhancers`.
 *
 * NOTE: JBrowse drops slot values equal to their defaults from a config snapshot, and an adapter
 * config left with no slot set loses its type. `build` therefore has an empty default and must
 * be set, which keeps every cistrack adapter config non-empty.
 */
import { DEFAULT_DAEMON_URL, DEFAULT_MAX_REGION_BP } from './daemon'

export function daemonSlots() {
  return {
    /**
     * #slot
     * base URL of `cistrack serve`
     */
    daemonUrl: {
      type: 'string',
      defaultValue: DEFAULT_DAEMON_URL,
      description: 'base URL of the cistrack daemon (cistrack serve)',
    },
    /**
     * #slot
     * genome build name on the daemon (required)
     */
    build: {
      type: 'string',
      defaultValue: '',
      description:
        'genome build name on the daemon, as listed by /v1/builds (required)',
    },
    /**
     * #slot
     * model role; empty for the build's default model
     */
    model: {
      type: 'string',
      defaultValue: '',
      description:
        "model role from the build's models table (student, teacher); empty: the build's default",
    },
    /**
     * #slot
     * grid stride in bp; 0 for the daemon's (a different value is refused by the daemon)
     */
    stride: {
      type: 'number',
      defaultValue: 0,
      description:
        "window stride in bp; 0 uses the daemon's (cistrack serve --stride), another value is refused",
    },
    /**
     * #slot
     * how long one request waits on the daemon for scores, ms
     */
    waitMs: {
      type: 'number',
      defaultValue: 5000,
      description:
        'how long one request waits on the daemon for scores before it answers with what is ready, ms',
    },
    /**
     * #slot
     * how long to keep re-asking while scores are pending, ms
     */
    maxWaitMs: {
      type: 'number',
      defaultValue: 120_000,
      description:
        'how long the track keeps asking again while scores are still being computed, ms',
    },
    /**
     * #slot
     * views larger than this are not requested (the daemon's --max-region)
     */
    maxRegionBp: {
      type: 'number',
      defaultValue: DEFAULT_MAX_REGION_BP,
      description:
        "views larger than this many bp are not requested; match the daemon's --max-region",
    },
  }
}

/**
 * The `group` slot of the adapters that read `/enhancers`: a cell group of a build whose
 * accessibility is a scATAC fragments file. Its default is empty (the build's own group), and
 * an empty value is not sent.
 */
export function groupSlot() {
  return {
    /**
     * #slot
     * cell group of a scATAC fragments build (sent as `group=NAME`); empty for the build's own
     */
    group: {
      type: 'string',
      defaultValue: '',
      description:
        "cell group of a build whose accessibility is scATAC fragments, as listed in /v1/builds (single_cell.groups); empty: the build's own group",
    },
  }
}
