/**
 * The resource kinds of `skupper.io/v2alpha1` (and the core `v1` Secret a redemption returns),
 * with the field names and defaults of the original system. Objects are strict: a field we do
 * not know is an error, so a typo never silently does nothing.
 */
import { z } from "zod";
import { parseDuration } from "../common/duration.js";

export const API_VERSION = "skupper.io/v2alpha1";

/**
 * Kubernetes resource name (RFC 1123 subdomain), the rule the original CLI applies. Written so
 * that each character has one way to match: the earlier `([-a-z0-9]*[a-z0-9])*` backtracked
 * exponentially, and a 40-character name ending in a bad character hung the process.
 */
export const NAME_PATTERN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** Namespaces are RFC 1123 labels. */
export const NAMESPACE_PATTERN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** The longest resource name Kubernetes accepts (a DNS subdomain). */
export const MAX_NAME_LENGTH = 253;
const NAME_RULE = "must consist of lower case letters, digits, '-' and '.', and start and end with a letter or digit";

/**
 * What is wrong with a resource name, or undefined if it is valid. Names become file names, so
 * every name from a user, a file or a peer is checked with this before it reaches the disk.
 */
export function resourceNameProblem(value: unknown): string | undefined {
  if (typeof value !== "string") return "must be a string";
  if (value.length === 0) return "must not be empty";
  if (value.length > MAX_NAME_LENGTH) return `must be at most ${MAX_NAME_LENGTH} characters`;
  if (!NAME_PATTERN.test(value)) return NAME_RULE;
  return undefined;
}

export function isValidResourceName(value: unknown): boolean {
  return resourceNameProblem(value) === undefined;
}

const name = z
  .string({ error: "must be a string" })
  .min(1, "must not be empty")
  .max(MAX_NAME_LENGTH, `must be at most ${MAX_NAME_LENGTH} characters`)
  .regex(NAME_PATTERN, NAME_RULE);

const stringMap = z.record(z.string(), z.string({ error: "values must be strings" }));

const ownerReference = z.object({
  apiVersion: z.string(),
  kind: z.string(),
  name: z.string(),
  uid: z.string(),
  controller: z.boolean().optional(),
  blockOwnerDeletion: z.boolean().optional(),
});

export const ObjectMetaSchema = z.strictObject({
  name,
  namespace: z.string().regex(NAMESPACE_PATTERN, "must be a lowercase RFC 1123 label").optional(),
  generateName: z.string().optional(),
  selfLink: z.string().optional(),
  uid: z.string().optional(),
  resourceVersion: z.string().optional(),
  generation: z.number().int().optional(),
  creationTimestamp: z.union([z.string(), z.null()]).optional(),
  deletionTimestamp: z.union([z.string(), z.null()]).optional(),
  deletionGracePeriodSeconds: z.number().int().optional(),
  labels: stringMap.optional(),
  annotations: stringMap.optional(),
  ownerReferences: z.array(ownerReference).optional(),
  finalizers: z.array(z.string()).optional(),
  managedFields: z.array(z.unknown()).optional(),
});
export type ObjectMeta = z.infer<typeof ObjectMetaSchema>;

/** Ports are strings in Link endpoints of the original; numbers are accepted and normalised. */
const portString = z
  .union([z.string(), z.number().int()])
  .transform((value) => String(value))
  .refine((value) => /^\d+$/.test(value) && Number(value) > 0 && Number(value) < 65536, "must be a port number between 1 and 65535");

const portNumber = z
  .number({ error: "must be an integer" })
  .int("must be an integer")
  .min(1, "must be between 1 and 65535")
  .max(65535, "must be between 1 and 65535");

const durationString = z
  .string()
  .refine((value) => parseDuration(value) !== undefined, "must be a duration such as 15m, 1h or 90s");

/** Status is written by the site; in input it is accepted (kubectl-style round trips) and ignored. */
const ignoredStatus = z.unknown().optional();

function resource<K extends string, S extends z.ZodType>(kind: K, spec: S, apiVersion = API_VERSION) {
  return z.strictObject({
    apiVersion: z.literal(apiVersion, { error: `must be ${apiVersion}` }),
    kind: z.literal(kind),
    metadata: ObjectMetaSchema,
    spec,
    status: ignoredStatus,
  });
}

export const EndpointSchema = z.strictObject({
  name: z.string().optional(),
  host: z.string().min(1, "must not be empty"),
  port: portString,
  group: z.string().optional(),
});
export type Endpoint = z.infer<typeof EndpointSchema>;

export const SiteSpecSchema = z.strictObject({
  serviceAccount: z.string().optional(),
  linkAccess: z.string().optional(),
  defaultIssuer: z.string().optional(),
  edge: z.boolean().optional(),
  ha: z.boolean().optional(),
  settings: stringMap.optional(),
});

export const LinkSpecSchema = z.strictObject({
  endpoints: z.array(EndpointSchema).min(1, "at least one endpoint is required"),
  tlsCredentials: z.string().optional(),
  cost: z.number().int("must be an integer").optional(),
  settings: stringMap.optional(),
});

export const AccessGrantSpecSchema = z.strictObject({
  redemptionsAllowed: z.number().int("must be an integer").min(0, "must not be negative").optional(),
  expirationWindow: durationString.optional(),
  code: z.string().optional(),
  issuer: z.string().optional(),
  settings: stringMap.optional(),
});

export const AccessTokenSpecSchema = z.strictObject({
  url: z.string({ error: "must be a string" }).min(1, "is required"),
  code: z.string({ error: "must be a string" }).min(1, "is required"),
  ca: z.string({ error: "must be a string" }).min(1, "is required"),
  linkCost: z.number().int("must be an integer").optional(),
  settings: stringMap.optional(),
});

export const RouterAccessRoleSchema = z.strictObject({
  name: z.enum(["inter-router", "edge", "normal"], { error: "must be inter-router or edge" }),
  port: portNumber.optional(),
});

export const RouterAccessSpecSchema = z.strictObject({
  roles: z.array(RouterAccessRoleSchema).min(1, "at least one role is required"),
  tlsCredentials: z.string({ error: "must be a string" }).min(1, "is required"),
  generateTlsCredentials: z.boolean().optional(),
  issuer: z.string().optional(),
  accessType: z.string().optional(),
  bindHost: z.string().optional(),
  subjectAlternativeNames: z.array(z.string()).optional(),
  settings: stringMap.optional(),
});

export const ListenerSpecSchema = z.strictObject({
  routingKey: z.string({ error: "must be a string" }).min(1, "is required"),
  host: z.string({ error: "must be a string" }).min(1, "is required"),
  port: portNumber,
  tlsCredentials: z.string().optional(),
  /** Ours, as MultiKeyListener has it: clients must present a certificate issued by the Secret's ca.crt. */
  requireClientCert: z.boolean().optional(),
  type: z.string().optional(),
  observer: z.string().optional(),
  exposePodsByName: z.boolean().optional(),
  settings: stringMap.optional(),
});

export const ConnectorSpecSchema = z.strictObject({
  routingKey: z.string({ error: "must be a string" }).min(1, "is required"),
  port: portNumber,
  host: z.string().optional(),
  selector: z.string().optional(),
  tlsCredentials: z.string().optional(),
  useClientCert: z.boolean().optional(),
  verifyHostname: z.boolean().optional(),
  type: z.string().optional(),
  includeNotReadyPods: z.boolean().optional(),
  exposePodsByName: z.boolean().optional(),
  settings: stringMap.optional(),
});

/**
 * The kinds below are accepted so that files written for the original apply unchanged; what each
 * does on our platforms (mostly: it has no effect, and its status says why) is in
 * docs/decisions.md. Their fields and rules are the original's.
 */

/** MultiKeyListener: one host and port whose connections go to one of several routing keys. */
const routingKeyList = z
  .array(z.string({ error: "must be a string" }).min(1, "must not be empty"))
  .min(1, "at least one routing key is required")
  .max(256, "at most 256 routing keys are allowed")
  .refine((keys) => new Set(keys).size === keys.length, "must not name a routing key twice");

export const MultiKeyListenerStrategySchema = z
  .strictObject({
    priority: z.strictObject({ routingKeys: routingKeyList }).optional(),
    weighted: z
      .strictObject({
        routingKeys: z
          .record(z.string().min(1, "must not be empty"), z.number({ error: "must be an integer" }).int("must be an integer").min(1, "weights must be positive"))
          .refine((keys) => Object.keys(keys).length >= 1, "at least one routing key is required")
          .refine((keys) => Object.keys(keys).length <= 256, "at most 256 routing keys are allowed"),
      })
      .optional(),
  })
  .refine((strategy) => (strategy.priority === undefined) !== (strategy.weighted === undefined), "give exactly one of priority and weighted");

export const MultiKeyListenerSpecSchema = z.strictObject({
  host: z.string({ error: "must be a string" }).min(1, "is required"),
  port: portNumber,
  tlsCredentials: z.string().optional(),
  requireClientCert: z.boolean().optional(),
  observer: z.string().optional(),
  strategy: MultiKeyListenerStrategySchema,
  settings: stringMap.optional(),
});

/** SecuredAccess: on the original's Kubernetes controller, a Service (and route) in front of selected pods. */
export const SecuredAccessPortSchema = z.strictObject({
  name: z.string({ error: "must be a string" }).min(1, "is required"),
  port: portNumber,
  targetPort: portNumber.optional(),
  protocol: z.string().optional(),
});

export const SecuredAccessSpecSchema = z.strictObject({
  accessType: z.string().optional(),
  selector: stringMap,
  ports: z.array(SecuredAccessPortSchema).min(1, "at least one port is required"),
  certificate: z.string().optional(),
  issuer: z.string().optional(),
  settings: stringMap.optional(),
});

/** Certificate: on the original's Kubernetes controller, a request for a certificate in the Secret of the same name. */
export const CertificateSpecSchema = z.strictObject({
  /** The CA Secret that signs it; empty or absent for a self-signed CA (the original requires the field but allows ""). */
  ca: z.string({ error: "must be a string (empty for a self-signed CA)" }).optional(),
  subject: z.string({ error: "must be a string" }).min(1, "is required"),
  hosts: z.array(z.string({ error: "must be a string" })).optional(),
  client: z.boolean().optional(),
  server: z.boolean().optional(),
  signing: z.boolean().optional(),
  settings: stringMap.optional(),
});

/** AttachedConnector: a connector in a workload namespace, served by the site of `siteNamespace`. */
export const AttachedConnectorSpecSchema = z.strictObject({
  siteNamespace: z.string({ error: "must be a string" }).regex(NAMESPACE_PATTERN, "must be a lowercase RFC 1123 label"),
  selector: z.string({ error: "must be a string" }).min(1, "is required"),
  port: portNumber,
  tlsCredentials: z.string().optional(),
  useClientCert: z.boolean().optional(),
  type: z.string().optional(),
  includeNotReadyPods: z.boolean().optional(),
  settings: stringMap.optional(),
});

/** AttachedConnectorBinding: in the site's namespace, lets the AttachedConnector of the same name in `connectorNamespace` in. */
export const AttachedConnectorBindingSpecSchema = z.strictObject({
  connectorNamespace: z.string({ error: "must be a string" }).regex(NAMESPACE_PATTERN, "must be a lowercase RFC 1123 label"),
  routingKey: z.string({ error: "must be a string" }).min(1, "is required"),
  exposePodsByName: z.boolean().optional(),
  settings: stringMap.optional(),
});

export const SiteSchema = resource("Site", SiteSpecSchema.default({}));
export const LinkSchema = resource("Link", LinkSpecSchema);
export const AccessGrantSchema = resource("AccessGrant", AccessGrantSpecSchema.default({}));
export const AccessTokenSchema = resource("AccessToken", AccessTokenSpecSchema);
export const RouterAccessSchema = resource("RouterAccess", RouterAccessSpecSchema);
export const ListenerSchema = resource("Listener", ListenerSpecSchema);
export const ConnectorSchema = resource("Connector", ConnectorSpecSchema);
export const MultiKeyListenerSchema = resource("MultiKeyListener", MultiKeyListenerSpecSchema);
export const SecuredAccessSchema = resource("SecuredAccess", SecuredAccessSpecSchema);
export const CertificateSchema = resource("Certificate", CertificateSpecSchema);
export const AttachedConnectorSchema = resource("AttachedConnector", AttachedConnectorSpecSchema);
export const AttachedConnectorBindingSchema = resource("AttachedConnectorBinding", AttachedConnectorBindingSpecSchema);

const base64 = z.string().refine((value) => /^[A-Za-z0-9+/\s]*={0,2}\s*$/.test(value), "must be base64");

export const SecretSchema = z.strictObject({
  apiVersion: z.literal("v1", { error: "must be v1" }),
  kind: z.literal("Secret"),
  metadata: ObjectMetaSchema,
  type: z.string().optional(),
  data: z.record(z.string(), base64).optional(),
  stringData: stringMap.optional(),
  immutable: z.boolean().optional(),
});

export const SCHEMAS = {
  Site: SiteSchema,
  Link: LinkSchema,
  AccessGrant: AccessGrantSchema,
  AccessToken: AccessTokenSchema,
  RouterAccess: RouterAccessSchema,
  Listener: ListenerSchema,
  Connector: ConnectorSchema,
  MultiKeyListener: MultiKeyListenerSchema,
  SecuredAccess: SecuredAccessSchema,
  Certificate: CertificateSchema,
  AttachedConnector: AttachedConnectorSchema,
  AttachedConnectorBinding: AttachedConnectorBindingSchema,
  Secret: SecretSchema,
} as const;

export type Kind = keyof typeof SCHEMAS;
export const KINDS = Object.keys(SCHEMAS) as Kind[];
