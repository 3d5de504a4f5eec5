/**
 * The gRPC messages as JavaScript sees them, under the names the agent and the CLI use. Every
 * shape comes from the types generated from `proto/sweeper/v1/sweeper.proto`
 * (common/proto-types/, by scripts/gen-proto-types.mjs, checked before the tests): change the
 * proto and regenerate, never these by hand.
 *
 * `__Output` is a message as it arrives (proto-loader fills every field's default, int64 as
 * numbers); the sender of a request may leave out what proto3 defaults anyway.
 */
import type { Assignment__Output } from './proto-types/sweeper/v1/Assignment.js';
import type { CompleteTrialRequest__Output } from './proto-types/sweeper/v1/CompleteTrialRequest.js';
import type { ControllerStats__Output } from './proto-types/sweeper/v1/ControllerStats.js';
import type { HeartbeatRequest__Output } from './proto-types/sweeper/v1/HeartbeatRequest.js';
import type { HeartbeatResponse__Output } from './proto-types/sweeper/v1/HeartbeatResponse.js';
import type { RegisterAgentRequest__Output } from './proto-types/sweeper/v1/RegisterAgentRequest.js';
import type { RegisterAgentResponse__Output } from './proto-types/sweeper/v1/RegisterAgentResponse.js';
import type { RequestTrialResponse__Output } from './proto-types/sweeper/v1/RequestTrialResponse.js';
import type { Sweep__Output } from './proto-types/sweeper/v1/Sweep.js';
import type { SweepDetail__Output } from './proto-types/sweeper/v1/SweepDetail.js';
import type { Trial__Output } from './proto-types/sweeper/v1/Trial.js';
import type { TrialDetail__Output } from './proto-types/sweeper/v1/TrialDetail.js';

/** A message a sender writes: the named fields may be left out (the receiver gets their defaults). */
type Sent<T, Omittable extends keyof T> = Omit<T, Omittable> & Partial<Pick<T, Omittable>>;

export type ApiSweep = Sweep__Output;
export type ApiTrial = Trial__Output;

/** The controller always sets `sweep`; protobuf's type allows a message field to be absent. */
export type ApiSweepDetail = Omit<SweepDetail__Output, 'sweep'> & { sweep: ApiSweep };
/** The controller always sets `trial`, as in ApiSweepDetail. */
export type ApiTrialDetail = Omit<TrialDetail__Output, 'trial'> & { trial: ApiTrial };

export type ApiAssignment = Assignment__Output;
export type ApiRequestTrialResponse = RequestTrialResponse__Output;
export type ApiRegisterAgentRequest = Sent<RegisterAgentRequest__Output, 'natsPublicKey'>;
export type ApiRegisterAgentResponse = RegisterAgentResponse__Output;
export type ApiHeartbeatRequest = HeartbeatRequest__Output;
export type ApiHeartbeatResponse = HeartbeatResponse__Output;
/** What an agent reports; the fields only some ends carry (lost, refused, counted points) may be left out. */
export type ApiCompleteTrialRequest = Sent<CompleteTrialRequest__Output, 'lostReason' | 'droppedPoints' | 'reportError' | 'metricPoints' | 'exitCode' | 'preemptedReason'>;
export type ApiControllerStats = ControllerStats__Output;
