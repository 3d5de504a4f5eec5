/**
 * Loads the gRPC contract from `proto/` at run time (with @grpc/proto-loader), for the
 * controller's server and every client. Field names become camelCase in JavaScript.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** `proto/` sits at the repo root; this module runs from `common/` (sources) or `dist/common/`. */
export function protoDir(): string {
  for (const rel of ['../proto', '../../proto']) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(`${dir}/sweeper/v1/sweeper.proto`)) return dir;
  }
  throw new Error('cannot find the proto/ folder next to the sweeper sources');
}

const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

let cached: grpc.GrpcObject | undefined;

export function loadProtos(): grpc.GrpcObject {
  if (cached) return cached;
  const dir = protoDir();
  const def = protoLoader.loadSync(['sweeper/v1/sweeper.proto', 'grpc/health/v1/health.proto'], {
    ...LOADER_OPTIONS,
    includeDirs: [dir],
  });
  cached = grpc.loadPackageDefinition(def);
  return cached;
}

export function sweeperServiceDef(): grpc.ServiceDefinition {
  const pkg = loadProtos() as any;
  return pkg.sweeper.v1.Sweeper.service;
}

export function healthServiceDef(): grpc.ServiceDefinition {
  const pkg = loadProtos() as any;
  return pkg.grpc.health.v1.Health.service;
}

export function sweeperClientCtor(): grpc.ServiceClientConstructor {
  const pkg = loadProtos() as any;
  return pkg.sweeper.v1.Sweeper;
}

export function healthClientCtor(): grpc.ServiceClientConstructor {
  const pkg = loadProtos() as any;
  return pkg.grpc.health.v1.Health;
}
