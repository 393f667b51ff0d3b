// Subpath @ctrd/api-proto/health: grpc.health.v1, gRPC's standard health service.
export * from './gen/grpc/health/v1/health_pb.js';
export { Health as HealthService } from './gen/grpc/health/v1/health_pb.js';
