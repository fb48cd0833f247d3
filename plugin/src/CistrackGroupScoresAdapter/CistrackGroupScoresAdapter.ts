/**
 * Window scores of every cell group of a build whose accessibility is a scATAC fragments file,
 * for MultiQuantitativeTrack / MultiLinearWiggleDisplay: one `/enhancers?group=*` request per
 * block and one feature per window per group, its `source` the group's name (as JBrowse's
 * MultiWiggleAdapter marks its sub-adapters' features). `getSources()` lists the groups from
 * `/v1/builds`, each with a colour and its depth (fragments), so that a thinly covered group is
 * seen as such.
 */
import { ObservableCreate } from '@jbrowse/core/util/rxjs'

import { CistrackError, getBuilds, getComplete, locusString } from '../daemon'
import { WindowScoresAdapter, windowFeatures } from '../windowScores'

import type { GroupsResponse, RequestOptions, SingleCell } from '../daemon'
import type { BaseOptions } from '@jbrowse/core/data_adapters/BaseAdapter'
import type { Feature, Region } from '@jbrowse/core/util'

/**
 * The groups' colours in the order shown (Okabe–Ito: told apart with colour-vision
 * deficiencies), repeated past eight groups.
 */
export const GROUP_COLORS: readonly string[] = [
  '#0072b2',
  '#d55e00',
  '#009e73',
  '#cc79a7',
  '#e69f00',
  '#56b4e9',
  '#000000',
  '#f0e442',
]

/** One source of the multi-wiggle display: a cell group. */
export type GroupSource = {
  /** The group's name: the `source` of its features. */
  name: string
  color: string
  /** The group's fragments (its depth); absent from a daemon that does not list them. */
  fragments?: number
  /** `rare: 580 fragments (1.0 % of the groups' 57,115)`. */
  description: string
}

/** What the multi-wiggle display passes along: the sources it shows, in its order. */
type GroupOptions = BaseOptions & { sources?: { name: string }[] }

export default class CistrackGroupScoresAdapter extends WindowScoresAdapter {
  static capabilities = ['getFeatures', 'getRefNames']

  private groupsP?: Promise<SingleCell>

  /**
   * The build's cell groups (`/v1/builds` `single_cell`: the groups in table order and their
   * fragments), asked once.
   */
  buildGroups(opts: RequestOptions = {}) {
    this.groupsP ??= (async () => {
      const settings = this.settings()
      const builds = await getBuilds(settings, opts)
      const build = builds.find(b => b.name === settings.build)
      if (!build) {
        throw new CistrackError(
          `cistrack daemon has no build ${settings.build} (builds: ${builds.map(b => b.name).join(', ')})`,
          404,
        )
      }
      if (!build.single_cell) {
        throw new CistrackError(
          `cistrack: build ${settings.build} reads no scATAC fragments, so it has no cell groups (CistrackGroupScoresAdapter needs a build whose accessibility is a fragments file)`,
          400,
        )
      }
      return build.single_cell
    })().catch((e: unknown) => {
      this.groupsP = undefined
      throw e
    })
    return this.groupsP
  }

  /**
   * The groups shown: those of the `groups` slot in its order, or every group of `available`.
   * Throws for a name the build lacks, naming its groups.
   */
  shownGroups(available: string[]) {
    const wanted = ((this.getConf('groups') as string[] | undefined) ?? [])
      .map(name => String(name).trim())
      .filter(Boolean)
    if (wanted.length === 0) {
      return available
    }
    const unknown = wanted.filter(name => !available.includes(name))
    if (unknown.length > 0) {
      throw new CistrackError(
        `cistrack: build ${this.settings().build} has no cell group ${unknown.map(n => `"${n}"`).join(', ')} (groups: ${available.join(', ')})`,
        404,
      )
    }
    return [...new Set(wanted)]
  }

  /**
   * The sources of the display: one per group shown, in order, with a distinct colour and the
   * group's depth (left out for a daemon that does not list the groups' fragments).
   */
  async getSources(_regions: Region[] = [], opts: BaseOptions = {}) {
    const singleCell = await this.buildGroups(opts)
    const shown = this.shownGroups(singleCell.groups)
    const depths = new Map(Object.entries(singleCell.fragments_by_group ?? {}))
    const total = [...depths.values()].reduce((a, b) => a + b, 0)
    return shown.map((name, i): GroupSource => {
      const fragments = depths.get(name)
      return {
        name,
        color: GROUP_COLORS[i % GROUP_COLORS.length]!,
        ...(fragments === undefined ? {} : { fragments }),
        description:
          fragments === undefined
            ? `cell group ${name}`
            : `${name}: ${fragments.toLocaleString('en-US')} fragments (${((100 * fragments) / total).toFixed(1)} % of the groups' ${total.toLocaleString('en-US')})`,
      }
    })
  }

  getFeatures(region: Region, opts: GroupOptions = {}) {
    return ObservableCreate<Feature>(async observer => {
      const settings = this.settings()
      const { refName, start, end } = region
      const body = await getComplete<GroupsResponse>(
        settings,
        'enhancers',
        this.windowsQuery(settings, region, 'enhancer scores', { group: '*' }),
        `enhancer scores per cell group for ${locusString(refName, start, end)}`,
        opts,
      )
      const answers = new Map(
        body.groups.map(g => [g.single_cell?.group ?? '', g]),
      )
      const shown = opts.sources?.length
        ? opts.sources.map(s => s.name)
        : this.shownGroups([...answers.keys()])
      for (const name of shown) {
        const answer = answers.get(name)
        if (!answer) {
          continue
        }
        for (const feature of windowFeatures(
          answer,
          region,
          `${this.id}-${name}`,
          { source: name },
        )) {
          observer.next(feature)
        }
      }
      observer.complete()
    }, opts.stopToken)
  }

  freeResources() {}
}
