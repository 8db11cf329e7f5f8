/**
 * Loads the `.proto` files of `core/proto/` for grpc-js, once per process and file. The same
 * options everywhere: camelCase fields, 64-bit integers as JS numbers, enums as their names,
 * defaults filled in. Works from sources and from the `out/main` bundle of a checkout.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

function protoPath(file: string): string {
  const candidates = [
    new URL(`../proto/${file}`, import.meta.url),
    new URL(`../../core/proto/${file}`, import.meta.url),
    new URL(`../../../core/proto/${file}`, import.meta.url),
  ].map((u) => fileURLToPath(u));
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`${file} not found (looked in ${candidates.join(', ')})`);
  return found;
}

const cache = new Map<string, grpc.GrpcObject>();

/**
 * The package `pkg` (e.g. "clusterdesk.peer.v1") of `core/proto/<file>`.
 * @throws Error naming the places looked in when the file is missing.
 */
export function loadProtoPackage(file: string, pkg: string): grpc.GrpcObject {
  let root = cache.get(file);
  if (!root) {
    const def = protoLoader.loadSync(protoPath(file), { keepCase: false, longs: Number, enums: String, defaults: true, oneofs: true });
    root = grpc.loadPackageDefinition(def);
    cache.set(file, root);
  }
  let node: grpc.GrpcObject = root;
  for (const part of pkg.split('.')) node = node[part] as grpc.GrpcObject;
  return node;
}
