/**
 * Synchronous compute requests routed over the overlay (DESIGN.md "Request"): any node → the
 * Raft leader's bounded queue → a team leader (by team, or round-robin over teams) → a worker
 * of that team (round-robin over the ones that are up) → result back along the path.
 * Each hop is a gRPC `Forward` call to a neighbor; see `core/overlay/router.ts` for hop
 * tracking and loop prevention.
 */
import { randomUUID } from 'node:crypto';
import { RoutingError, UnavailableError, ValidationError, OverloadedError } from '../common/errors';
import type { Logger } from '../common/logger';
import type { ComputeOp, RequestResult } from '../control/api';
import type { Topology } from '../config/schema';
import { RequestQueue } from '../compute/request-queue';
import { MAX_VALUES, type TaskRegistry } from '../compute/tasks';
import { arrive, DEFAULT_HOP_LIMIT, newLeg, nextHop, pickRoundRobin, type RouteHeader } from '../overlay/router';
import { decodeWireError, type PeerClients } from './peer';

/** Per-hop deadline. */
const HOP_TIMEOUT_MS = 15_000;
/** Requests a non-leader stage may run at once (the overlay's per-process limit). */
const MAX_IN_FLIGHT = 100;

interface RoutedRequest extends RouteHeader {
  requestId: string;
  op: string;
  values: number[];
  team: string;
  stage: 'leader' | 'team' | 'worker';
  destination: string;
  origin: string;
}

export class ComputeService {
  readonly queue: RequestQueue;
  private inFlight = 0;
  private rr = 0;

  constructor(
    private readonly self: string,
    private readonly topology: Topology,
    private readonly clients: PeerClients,
    private readonly tasks: TaskRegistry,
    private readonly raftLeader: () => string | null,
    private readonly isUp: (id: string) => boolean,
    private readonly logger: Logger,
  ) {
    this.queue = new RequestQueue({ capacity: 200, concurrency: 100, now: Date.now });
  }

  /** Requests in flight on this node, queued ones excluded. */
  get running(): number {
    return this.inFlight + this.queue.inFlight;
  }

  /**
   * Entry point: accepts a request at this node and routes it to the Raft leader.
   * @throws ValidationError (bad op/values/team), UnavailableError (no leader), RoutingError, OverloadedError.
   */
  async request(op: ComputeOp, values: unknown, team?: string | null): Promise<RequestResult> {
    this.tasks.get(op).validate(values);
    if (team && !this.topology.teams.some((t) => t.name === team)) {
      throw new ValidationError(`unknown team "${team}"; teams: ${this.topology.teams.map((t) => t.name).join(', ')}`);
    }
    const leader = this.raftLeader();
    if (!leader) throw new UnavailableError('no Raft leader is known; try again in a few seconds');
    const started = Date.now();
    const header = arrive({ hopCount: 0, hopLimit: DEFAULT_HOP_LIMIT, route: [], leg: [] }, this.self);
    const req: RoutedRequest = {
      ...header,
      requestId: randomUUID(),
      op,
      values: values as number[],
      team: team ?? '',
      stage: 'leader',
      destination: leader,
      origin: this.self,
    };
    const out = await this.route(req);
    return { op, result: JSON.parse(out.resultJson) as number | number[], route: out.route, durationMs: Date.now() - started };
  }

  /** Handles a `Forward` call from a neighbor (validates the untrusted message first). */
  async handleForward(raw: Record<string, unknown>): Promise<{ resultJson: string; route: string[] }> {
    const req = validateRouted(raw, this.topology);
    const header = arrive(req, this.self);
    return this.route({ ...req, ...header });
  }

  /** `req` has arrived at this node. */
  private async route(req: RoutedRequest): Promise<{ resultJson: string; route: string[] }> {
    if (req.destination !== this.self) return this.forwardTo(req);
    switch (req.stage) {
      case 'leader':
        return this.queue.run(() => {
          const team = this.chooseTeam(req.team);
          return this.route({ ...req, ...newLeg(req, this.self), stage: 'team', team: team.name, destination: team.leader });
        });
      case 'team': {
        const team = this.topology.teams.find((t) => t.name === req.team);
        if (!team) throw new ValidationError(`unknown team "${req.team}"`);
        const reachable = team.workers.filter((w) => this.isUp(w) && nextHop(this.topology.adjacency, this.self, w, this.isUp) !== null);
        const worker = pickRoundRobin(reachable, this.rr++) ?? this.self;
        return this.limited(() => this.route({ ...req, ...newLeg(req, this.self), stage: 'worker', destination: worker }));
      }
      case 'worker':
        return this.limited(async () => ({ resultJson: JSON.stringify(this.tasks.run(req.op, req.values)), route: req.route }));
    }
  }

  private chooseTeam(requested: string): Topology['teams'][number] {
    if (requested) {
      const t = this.topology.teams.find((x) => x.name === requested);
      if (!t) throw new ValidationError(`unknown team "${requested}"`);
      if (!this.isUp(t.leader)) throw new UnavailableError(`team "${requested}" is unavailable: its leader ${t.leader} is down`);
      return t;
    }
    const live = this.topology.teams.filter((t) => this.isUp(t.leader) && nextHop(this.topology.adjacency, this.self, t.leader, this.isUp) !== null);
    const t = pickRoundRobin(live, this.rr++);
    if (!t) throw new UnavailableError('no team leader is reachable from the Raft leader');
    return t;
  }

  private async limited<T>(fn: () => Promise<T>): Promise<T> {
    if (this.inFlight >= MAX_IN_FLIGHT) throw new OverloadedError(`${this.self} already runs ${MAX_IN_FLIGHT} requests`);
    this.inFlight++;
    try {
      return await fn();
    } finally {
      this.inFlight--;
    }
  }

  private async forwardTo(req: RoutedRequest): Promise<{ resultJson: string; route: string[] }> {
    const hop = nextHop(this.topology.adjacency, this.self, req.destination, this.isUp);
    if (!hop) throw new RoutingError(`${req.destination} is unreachable from ${this.self} over the overlay`);
    const reply = await this.clients.unary<{ resultJson: string; route: string[]; error?: Record<string, unknown> }>(hop, 'Forward', req, HOP_TIMEOUT_MS);
    const err = decodeWireError(reply.error);
    if (err) throw err;
    return { resultJson: reply.resultJson, route: reply.route };
  }
}

/** Checks a Forward message received from the network. @throws ValidationError / RoutingError. */
function validateRouted(raw: Record<string, unknown>, topology: Topology): RoutedRequest {
  const str = (k: string): string => {
    const v = raw[k];
    if (typeof v !== 'string' || v.length > 256) throw new ValidationError(`forward: ${k} must be a string of at most 256 characters`);
    return v;
  };
  const ids = (k: string): string[] => {
    const v = raw[k];
    if (!Array.isArray(v) || v.length > 64 || !v.every((x) => typeof x === 'string' && topology.byId.has(x))) {
      throw new ValidationError(`forward: ${k} must list known node ids`);
    }
    return v as string[];
  };
  const stage = str('stage');
  if (stage !== 'leader' && stage !== 'team' && stage !== 'worker') throw new ValidationError(`forward: unknown stage "${stage}"`);
  const destination = str('destination');
  if (!topology.byId.has(destination)) throw new RoutingError(`forward: unknown destination "${destination}"`);
  const values = raw.values;
  if (!Array.isArray(values) || values.length > MAX_VALUES) throw new ValidationError('forward: values must be an array of at most 100000 numbers');
  const hopLimit = Number(raw.hopLimit);
  const hopCount = Number(raw.hopCount);
  if (!Number.isInteger(hopLimit) || hopLimit < 1 || hopLimit > 64 || !Number.isInteger(hopCount) || hopCount < 0) {
    throw new ValidationError('forward: hopCount/hopLimit out of range');
  }
  return {
    requestId: str('requestId'),
    op: str('op'),
    values: values as number[],
    team: str('team'),
    stage,
    destination,
    origin: str('origin'),
    hopCount,
    hopLimit,
    route: ids('route'),
    leg: ids('leg'),
  };
}
