export * from "./protocol.js";
export { GrantServer, Refusal, hostOf } from "./server.js";
export { DEFAULT_CONNECTION_LIMITS, connectionLimits } from "./connection-guard.js";
export type { ConnectionLimits } from "./connection-guard.js";
export type { GrantLedger, GrantRecord, GrantServerConfig, RedemptionRequest } from "./server.js";
export { acceptCredentials, credentialNames, redeemToken, RedemptionError } from "./client.js";
export { parseAccessTokenFile, MAX_TOKEN_FILE_BYTES } from "./token-file.js";
export type { TokenToRedeem, RedeemerIdentity, RedeemedCredentials, RedemptionFailure } from "./client.js";
