/**
 * The deterministic simulator's command line (issue 3, "The deterministic simulator").
 *
 *   npm run sim -- --seeds N [--seed S] [--voters 3|5|7] [--learners 0|1|2] [--ticks T]
 *                  [--membership-rate R] [--snapshot-every N] [--catch-up N] [--read-only safe|lease-based] [--trace]
 *
 * --membership-rate: probability (0..1) that a fault is a membership change or leadership
 * transfer; --snapshot-every: compact every N applied entries (0 = never); --catch-up: Raft
 * snapshotCatchUpEntries; --read-only: Raft readOnly on every node (lease-based forces check-quorum on).
 * Without them each seed draws its own (sweepOptions; lease-based on half of the check-quorum seeds).
 *
 * Runs seeds 1..N (or only seed S). For each failing seed prints one line: `FAIL seed=S …`
 * with the violation, the replay command and the replayable trace (faults with their ticks;
 * every step with --trace). `--trace` with `--seed` prints the full trace of that seed.
 * Ends with one JSON line `{"seeds":N,"failures":K,"ticks":…,"ops":…,"membership":…,"snapshots":…,"leaseSeeds":…,"leaseReads":…,"elapsedMs":…}`; exit 1 on any failure.
 */
import { parseArgs } from 'node:util';
import { runSimulation, sweepOptions, type SimOptions } from '../core/sim';

const { values } = parseArgs({
  options: {
    seeds: { type: 'string', default: '100' },
    seed: { type: 'string' },
    start: { type: 'string', default: '1' },
    voters: { type: 'string' },
    learners: { type: 'string' },
    ticks: { type: 'string' },
    'membership-rate': { type: 'string' },
    'snapshot-every': { type: 'string' },
    'catch-up': { type: 'string' },
    'read-only': { type: 'string' },
    trace: { type: 'boolean', default: false },
  },
});

function int(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) {
    console.error(`--${name} must be an integer, got ${v}`);
    process.exit(2);
  }
  return n;
}

const overrides: Partial<SimOptions> = {};
const voters = int('voters', values.voters);
if (voters !== undefined) overrides.voters = voters;
const learners = int('learners', values.learners);
if (learners !== undefined) overrides.learners = learners;
const ticks = int('ticks', values.ticks);
if (ticks !== undefined) overrides.workloadTicks = ticks;
const membershipRate = values['membership-rate'];
if (membershipRate !== undefined) {
  const r = Number(membershipRate);
  if (!(r >= 0 && r <= 1)) {
    console.error(`--membership-rate must be a number in 0..1, got ${membershipRate}`);
    process.exit(2);
  }
  overrides.membershipRate = r;
}
const snapshotEvery = int('snapshot-every', values['snapshot-every']);
if (snapshotEvery !== undefined) overrides.snapshotEvery = snapshotEvery;
const catchUp = int('catch-up', values['catch-up']);
if (catchUp !== undefined) overrides.snapshotCatchUpEntries = catchUp;
const readOnly = values['read-only'];
if (readOnly !== undefined) {
  if (readOnly !== 'safe' && readOnly !== 'lease-based') {
    console.error(`--read-only must be safe or lease-based, got ${readOnly}`);
    process.exit(2);
  }
  overrides.readOnly = readOnly;
  if (readOnly === 'lease-based') overrides.checkQuorum = true;
}
if (values.trace) overrides.fullTrace = true;

const one = int('seed', values.seed);
const start = int('start', values.start)!;
const seeds = one !== undefined ? [one] : Array.from({ length: int('seeds', values.seeds)! }, (_, i) => start + i);
const flags = [
  voters !== undefined ? `--voters ${voters}` : '',
  learners !== undefined ? `--learners ${learners}` : '',
  ticks !== undefined ? `--ticks ${ticks}` : '',
  membershipRate !== undefined ? `--membership-rate ${membershipRate}` : '',
  snapshotEvery !== undefined ? `--snapshot-every ${snapshotEvery}` : '',
  catchUp !== undefined ? `--catch-up ${catchUp}` : '',
  readOnly !== undefined ? `--read-only ${readOnly}` : '',
]
  .filter(Boolean)
  .join(' ');

const t0 = performance.now();
let failures = 0;
let totalTicks = 0;
let ops = 0;
const membership = { confEntries: 0, transfersAsked: 0, transfersDone: 0 };
const snapshots = { made: 0, installed: 0 };
let leaseSeeds = 0;
let leaseReads = 0;
for (const seed of seeds) {
  const so = sweepOptions(seed, overrides);
  const r = runSimulation(so);
  if (so.readOnly === 'lease-based') leaseSeeds++;
  leaseReads += r.leaseReads;
  totalTicks += r.ticks;
  ops += r.ops;
  membership.confEntries += r.membership.confEntries;
  membership.transfersAsked += r.membership.transfersAsked;
  membership.transfersDone += r.membership.transfersDone;
  snapshots.made += r.snapshots.made;
  snapshots.installed += r.snapshots.installed;
  if (values.trace && one !== undefined) for (const line of r.trace) console.log(line);
  if (!r.ok) {
    failures++;
    const f = r.failure!;
    console.log(`FAIL seed=${seed} tick=${f.tick} step=${f.step} ${f.name}: ${f.message} | replay: npm run sim -- --seed ${seed}${flags ? ` ${flags}` : ''} --trace | trace: ${r.trace.join('; ')}`);
  }
}
console.log(JSON.stringify({ seeds: seeds.length, failures, ticks: totalTicks, ops, membership, snapshots, leaseSeeds, leaseReads, elapsedMs: Math.round(performance.now() - t0) }));
process.exitCode = failures > 0 ? 1 : 0;
