/**
 * Loads the gRPC contract from `proto/` at run time (with @grpc/proto-loader), for the
 * controller's server and every client. Field names become camelCase in JavaScript. The types of
 * what it loads are generated from the same files (common/proto-types/).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType as HealthProtos } from './proto-types/health.js';
import type { ProtoGrpcType as SweeperProtos } from './proto-types/sweeper.js';

/** `proto/` sits at the repo root; this module runs from `common/` (sources) or `dist/common/`. */
export function protoDir(): string {
  for (const rel of ['../proto', '../../proto']) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(`${dir}/sweeper/v1/sweeper.proto`)) return dir;
  }
  throw new Error('cannot find the proto/ folder next to the sweeper sources');
}

/**
 * scripts/gen-proto-types.mjs reads these to generate common/proto-types/ for the same objects:
 * keep each on a line of its own, `name: value,`.
 */
const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

type Protos = SweeperProtos & HealthProtos;

let cached: Protos | undefined;

export function loadProtos(): Protos {
  if (cached) return cached;
  const dir = protoDir();
  const def = protoLoader.loadSync(['sweeper/v1/sweeper.proto', 'grpc/health/v1/health.proto'], {
    ...LOADER_OPTIONS,
    includeDirs: [dir],
  });
  // loadPackageDefinition is typed for any proto; the generated types say what these hold.
  cached = grpc.loadPackageDefinition(def) as unknown as Protos;
  return cached;
}

export function sweeperServiceDef(): Protos['sweeper']['v1']['Sweeper']['service'] {
  return loadProtos().sweeper.v1.Sweeper.service;
}

export function healthServiceDef(): Protos['grpc']['health']['v1']['Health']['service'] {
  return loadProtos().grpc.health.v1.Health.service;
}

export function sweeperClientCtor(): Protos['sweeper']['v1']['Sweeper'] {
  return loadProtos().sweeper.v1.Sweeper;
}

export function healthClientCtor(): Protos['grpc']['health']['v1']['Health'] {
  return loadProtos().grpc.health.v1.Health;
}
