/**
 * A real peer server "S" on a free 127.0.0.1 port and a client "C" with a block fetcher to it, for
 * tests of the peer RPCs: handlers not given refuse (or answer nothing).
 */
import type * as grpc from '@grpc/grpc-js';
import { silentLogger } from '../../core/common/logger';
import { GrpcBlobFetcher, PeerClients, startPeerServer, type PeerHandlers } from '../../core/node/peer';
import { freePortBlock } from './ports';

/** The peer handlers a test does not exercise. */
export const UNUSED_HANDLERS: PeerHandlers = {
  raft: () => {},
  kvForward: () => Promise.reject(new Error('unused')),
  forward: () => Promise.reject(new Error('unused')),
  metrics: () => ({}),
  localFiles: () => ({}),
  openObject: () => null,
};

export interface TestPeer {
  server: grpc.Server;
  clients: PeerClients;
  /** C's fetcher: `fetcher.getBlocks('S', …)` asks the server. */
  fetcher: GrpcBlobFetcher;
  /** Closes the client and shuts the server down. */
  close(): Promise<void>;
}

/** Starts server S with `handlers` (over {@link UNUSED_HANDLERS}) and client C. */
export async function startTestPeer(handlers: Partial<PeerHandlers>): Promise<TestPeer> {
  const port = await freePortBlock(1);
  const addresses = new Map([
    ['S', `127.0.0.1:${port}`],
    ['C', '127.0.0.1:1'],
  ]);
  const server = await startPeerServer({ host: '127.0.0.1', port, dir: { cluster: 't', self: 'S', addresses }, logger: silentLogger, handlers: { ...UNUSED_HANDLERS, ...handlers } });
  const clients = new PeerClients({ cluster: 't', self: 'C', addresses });
  return {
    server,
    clients,
    fetcher: new GrpcBlobFetcher(clients, 'C', silentLogger),
    async close() {
      clients.close();
      await new Promise<void>((r) => server.tryShutdown(() => r()));
    },
  };
}
