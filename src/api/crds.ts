/**
 * The CustomResourceDefinitions of the `skupper.io/v2alpha1` kinds, for Kubernetes 1.20 and newer
 * (`apiextensions.k8s.io/v1`, structural schemas). One source of truth: each spec schema is the
 * zod schema the local platform validates with, converted to the OpenAPI v3 subset a 1.20 API
 * server accepts; the status schemas follow the status types in `types.ts` (the compiler checks
 * that every status field has one); the printer columns and names are the original's.
 *
 * What a structural schema cannot say (name rules, durations, cross-field checks, a field we do
 * not know) is checked by the controller and reported in status; see docs/kubernetes.md.
 */
import { z } from "zod";
import { stringify } from "yaml";
import { pluralName, SHORT_NAMES } from "./names.js";
import { API_VERSION, SCHEMAS, type Endpoint, type Kind } from "./schemas.js";
import type {
  AccessGrantStatus,
  AccessTokenStatus,
  AttachedConnectorBindingStatus,
  AttachedConnectorStatus,
  CertificateStatus,
  CommonStatus,
  Condition,
  ConnectorStatus,
  LinkStatus,
  ListenerStatus,
  MultiKeyListenerStatus,
  RouterAccessStatus,
  SecuredAccessStatus,
  SelectedPod,
  SiteRecord,
  SiteRecordLink,
  SiteStatus,
} from "./types.js";

/** The kinds that are custom resources (Secret is core `v1`). */
export type CustomResourceKind = Exclude<Kind, "Secret">;
export const CUSTOM_RESOURCE_KINDS: readonly CustomResourceKind[] = [
  "Site",
  "Link",
  "AccessGrant",
  "AccessToken",
  "Listener",
  "Connector",
  "RouterAccess",
  "MultiKeyListener",
  "SecuredAccess",
  "Certificate",
  "AttachedConnector",
  "AttachedConnectorBinding",
];

const [GROUP, VERSION] = API_VERSION.split("/") as [string, string];

/** The part of OpenAPI v3 (`JSONSchemaProps`) the generated schemas use. */
export interface JsonSchemaProps {
  type?: "object" | "array" | "string" | "integer" | "number" | "boolean";
  description?: string;
  properties?: Record<string, JsonSchemaProps>;
  additionalProperties?: JsonSchemaProps;
  items?: JsonSchemaProps;
  required?: string[];
  enum?: unknown[];
  default?: unknown;
  format?: string;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  nullable?: boolean;
  "x-kubernetes-int-or-string"?: true;
  "x-kubernetes-preserve-unknown-fields"?: true;
}

export interface PrinterColumn {
  name: string;
  type: "string" | "integer" | "number" | "boolean" | "date";
  description: string;
  jsonPath: string;
}

export interface CustomResourceDefinition {
  apiVersion: "apiextensions.k8s.io/v1";
  kind: "CustomResourceDefinition";
  metadata: { name: string };
  spec: {
    group: string;
    names: { kind: CustomResourceKind; listKind: string; plural: string; singular: string; shortNames?: string[] };
    scope: "Namespaced";
    versions: Array<{
      name: string;
      served: boolean;
      storage: boolean;
      schema: { openAPIV3Schema: JsonSchemaProps };
      subresources: { status: Record<string, never> };
      additionalPrinterColumns: PrinterColumn[];
    }>;
  };
}

// ---- spec: the zod schema, made structural ------------------------------------------------

/** Keywords a 1.20 structural schema accepts as zod writes them. */
const COPIED_KEYWORDS = new Set([
  "type", "description", "required", "enum", "default", "format", "pattern",
  "minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems",
]);
const TYPES = new Set(["object", "array", "string", "integer", "number", "boolean"]);

/**
 * A zod-generated JSON schema node as a structural OpenAPI v3 schema. Throws on anything it
 * cannot express, so a schema change the CRDs cannot follow fails `npm run generate` and the
 * staleness test instead of producing a CRD the API server refuses.
 */
export function structuralSchema(node: Record<string, unknown>, at = "spec"): JsonSchemaProps {
  const variants = (node.anyOf ?? node.oneOf) as Array<Record<string, unknown>> | undefined;
  if (variants) return unionSchema(variants, at);
  // zod writes a union of simple types ("string or null") as a type array.
  if (Array.isArray(node.type)) return unionSchema(node.type.map((type: unknown) => ({ ...node, type })), at);
  const meaningful = Object.keys(node).filter((key) => key !== "$schema" && key !== "default" && key !== "description");
  if (meaningful.length === 0) return { "x-kubernetes-preserve-unknown-fields": true }; // z.unknown()
  const out: JsonSchemaProps = {};
  for (const [key, value] of Object.entries(node)) {
    switch (key) {
      case "$schema":
        break;
      case "type":
        if (typeof value !== "string" || !TYPES.has(value)) throw new Error(`${at}: type ${JSON.stringify(value)} has no structural form`);
        out.type = value as JsonSchemaProps["type"];
        break;
      case "properties":
        out.properties = Object.fromEntries(
          Object.entries(value as Record<string, Record<string, unknown>>).map(([name, child]) => [name, structuralSchema(child, `${at}.${name}`)]),
        );
        break;
      case "items":
        out.items = structuralSchema(value as Record<string, unknown>, `${at}[]`);
        break;
      case "additionalProperties":
        // `false` (a strict object) is what the API server does anyway by pruning unknown fields,
        // and 1.20 refuses it next to `properties`; a schema is a map's values.
        if (value !== false) out.additionalProperties = structuralSchema(value as Record<string, unknown>, `${at}.*`);
        break;
      case "propertyNames":
        if ((value as { type?: unknown }).type !== "string") throw new Error(`${at}: map keys can only be strings`);
        break;
      case "const":
        out.enum = [value];
        break;
      case "minimum":
      case "maximum":
        // zod's int() writes the bounds of a safe integer: a limit of JavaScript, not of the field.
        if (Math.abs(value as number) !== Number.MAX_SAFE_INTEGER) out[key] = value as number;
        break;
      default:
        if (!COPIED_KEYWORDS.has(key)) throw new Error(`${at}: "${key}" has no structural form in Kubernetes 1.20`);
        (out as Record<string, unknown>)[key] = value;
    }
  }
  return out;
}

/** The unions a 1.20 structural schema can say: string-or-integer, and "or null". */
function unionSchema(variants: Array<Record<string, unknown>>, at: string): JsonSchemaProps {
  const types = variants.map((variant) => variant.type);
  const nonNull = variants.filter((variant) => variant.type !== "null");
  if (nonNull.length === 1 && nonNull.length < variants.length) return { ...structuralSchema(nonNull[0]!, at), nullable: true };
  if (types.length === 2 && types.includes("string") && types.includes("integer")) return { "x-kubernetes-int-or-string": true };
  throw new Error(`${at}: a union of ${JSON.stringify(types)} has no structural form in Kubernetes 1.20`);
}

function specSchema(kind: CustomResourceKind): JsonSchemaProps {
  // Input, not output: what a user may write (a Link port as "55671" or 55671), before defaults apply.
  return structuralSchema(z.toJSONSchema(SCHEMAS[kind].shape.spec, { io: "input" }) as Record<string, unknown>);
}

function specRequired(kind: CustomResourceKind): boolean {
  return !SCHEMAS[kind].shape.spec.safeParse(undefined).success;
}

// ---- status: one schema per status type ---------------------------------------------------

/** A schema for every field of T, and no other: adding a status field without one fails to compile. */
type Fields<T> = { [K in keyof T]-?: JsonSchemaProps };

const string = (description?: string): JsonSchemaProps => (description ? { type: "string", description } : { type: "string" });
const integer = (): JsonSchemaProps => ({ type: "integer" });
const boolean = (): JsonSchemaProps => ({ type: "boolean" });
const arrayOf = (items: JsonSchemaProps): JsonSchemaProps => ({ type: "array", items });
function object<T>(properties: Fields<T>, required?: Array<keyof T & string>): JsonSchemaProps {
  return required ? { type: "object", properties, required } : { type: "object", properties };
}

/** The standard Kubernetes condition (metav1.Condition), as the original declares it. */
const condition = object<Condition>(
  {
    type: { type: "string", maxLength: 316, pattern: "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$" },
    status: { type: "string", enum: ["True", "False", "Unknown"] },
    reason: { type: "string", minLength: 1, maxLength: 1024, pattern: "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$" },
    message: { type: "string", maxLength: 32768 },
    observedGeneration: { type: "integer", format: "int64", minimum: 0 },
    lastTransitionTime: { type: "string", format: "date-time" },
  },
  ["type", "status", "reason", "message", "lastTransitionTime"],
);

const common: Fields<CommonStatus> = {
  observedGeneration: { type: "integer", format: "int64", minimum: 0, description: "The metadata.generation the status describes." },
  status: { type: "string", enum: ["Pending", "Ready", "Error"], description: "Pending, Ready or Error." },
  message: string("A human-readable status message; errors are reported here."),
  conditions: arrayOf(condition),
};

/** Endpoints in status carry the port as a string, as the original's do. */
const endpoint = object<Endpoint>({ name: string(), host: string(), port: string(), group: string() });

const siteRecordLink = object<SiteRecordLink>({ name: string(), remoteSiteId: string(), remoteSiteName: string(), operational: boolean() });
const siteRecord = object<SiteRecord>({
  id: string(),
  name: string(),
  namespace: string(),
  platform: string(),
  version: string(),
  links: arrayOf(siteRecordLink),
  services: arrayOf(
    object<NonNullable<SiteRecord["services"]>[number]>({ routingKey: string(), listeners: arrayOf(string()), connectors: arrayOf(string()) }),
  ),
});

function status<T extends CommonStatus>(own: Fields<Omit<T, keyof CommonStatus>>): JsonSchemaProps {
  return { type: "object", properties: { ...common, ...(own as Record<string, JsonSchemaProps>) } };
}

const STATUS: Record<CustomResourceKind, JsonSchemaProps> = {
  Site: status<SiteStatus>({
    endpoints: arrayOf(endpoint),
    sitesInNetwork: integer(),
    network: arrayOf(siteRecord),
    defaultIssuer: string(),
    controller: object<NonNullable<SiteStatus["controller"]>>({ name: string(), namespace: string(), version: string() }),
  }),
  Link: status<LinkStatus>({ remoteSiteId: string(), remoteSiteName: string() }),
  AccessGrant: status<AccessGrantStatus>({
    url: string(),
    code: string(),
    ca: string(),
    redemptions: integer(),
    expirationTime: { type: "string", format: "date-time" },
  }),
  AccessToken: status<AccessTokenStatus>({ redeemed: boolean() }),
  RouterAccess: status<RouterAccessStatus>({ endpoints: arrayOf(endpoint) }),
  Listener: status<ListenerStatus>({ hasMatchingConnector: boolean() }),
  Connector: status<ConnectorStatus>({ hasMatchingListener: boolean() }),
  MultiKeyListener: status<MultiKeyListenerStatus>({
    hasDestination: boolean(),
    strategy: object<NonNullable<MultiKeyListenerStatus["strategy"]>>({
      priority: object<NonNullable<NonNullable<MultiKeyListenerStatus["strategy"]>["priority"]>>({ routingKeysReachable: arrayOf(string()) }),
      weighted: object<NonNullable<NonNullable<MultiKeyListenerStatus["strategy"]>["weighted"]>>({
        routingKeysReachable: { type: "object", additionalProperties: integer() },
      }),
    }),
  }),
  SecuredAccess: status<SecuredAccessStatus>({ endpoints: arrayOf(endpoint), ca: string() }),
  Certificate: status<CertificateStatus>({ expiration: string() }),
  AttachedConnector: status<AttachedConnectorStatus>({ selectedPods: arrayOf(object<SelectedPod>({ name: string(), ip: string() })) }),
  AttachedConnectorBinding: status<AttachedConnectorBindingStatus>({ hasMatchingListener: boolean() }),
};

// ---- names, descriptions, printer columns --------------------------------------------------

const DESCRIPTIONS: Record<CustomResourceKind, string> = {
  Site: "A place on the network where application workloads run; the parent of the other resources in its namespace.",
  Link: "A channel for communication between sites.",
  AccessGrant: "Permission to redeem access tokens for links to this site.",
  AccessToken: "A short-lived credential redeemed for a link to a remote site.",
  Listener: "A local endpoint whose connections go to connectors with the same routing key.",
  Connector: "A local workload that receives connections from listeners with the same routing key.",
  RouterAccess: "How remote routers reach this site's router: the roles and ports it listens on.",
  MultiKeyListener: "A local endpoint whose connections go to one of several routing keys, by priority or by weight.",
  SecuredAccess: "Access to selected pods through a Service, with a server certificate (used by the original's Kubernetes controller).",
  Certificate: "A certificate to be issued into the Secret of the same name (used by the original's Kubernetes controller).",
  AttachedConnector: "A connector for workloads in a namespace without a site, served by the site of another namespace.",
  AttachedConnectorBinding: "In a site's namespace, lets the AttachedConnector of the same name in another namespace use this site.",
};

const column = (name: string, type: PrinterColumn["type"], jsonPath: string, description: string): PrinterColumn => ({
  name,
  type,
  description,
  jsonPath,
});
const statusColumn = (what: string) => column("Status", "string", ".status.status", `The status of the ${what}`);
const messageColumn = (what: string) => column("Message", "string", ".status.message", `Any human readable message relevant to the ${what}`);

/** The original's columns, names and JSONPaths (for the kinds added later, columns in its style). */
const PRINTER_COLUMNS: Record<CustomResourceKind, PrinterColumn[]> = {
  Site: [
    statusColumn("site"),
    column("Sites In Network", "integer", ".status.sitesInNetwork", "The number of sites in the network"),
    messageColumn("site"),
  ],
  Link: [
    statusColumn("link"),
    column("Remote Site", "string", ".status.remoteSiteName", "The name of the site linked to"),
    messageColumn("link"),
  ],
  AccessGrant: [
    column("Redemptions Allowed", "integer", ".spec.redemptionsAllowed", "The number of claims the grant is valid for"),
    column("Redemptions Made", "integer", ".status.redemptions", "The number of times an access token originating from this grant has been redeemed"),
    column("Expiration", "string", ".status.expirationTime", "When the grant will expire"),
    statusColumn("grant"),
    messageColumn("grant"),
  ],
  AccessToken: [
    column("URL", "string", ".spec.url", "The URL the access token is redeemed at"),
    column("Redeemed", "boolean", ".status.redeemed", "Whether the access token has already been redeemed"),
    statusColumn("access token"),
    messageColumn("token"),
  ],
  Listener: [
    column("Routing Key", "string", ".spec.routingKey", "The key that ties connectors and listeners together"),
    column("Port", "integer", ".spec.port", "The port the service listens on"),
    column("Host", "string", ".spec.host", "The name of the service"),
    statusColumn("listener"),
    column("Has Matching Connector", "boolean", ".status.hasMatchingConnector", "Whether there is at least one connector in the network with a matching routing key."),
    messageColumn("listener"),
  ],
  Connector: [
    column("Routing Key", "string", ".spec.routingKey", "The key that ties connectors and listeners together"),
    column("Port", "integer", ".spec.port", "The port to connect to"),
    column("Host", "string", ".spec.host", "The host to connect to"),
    column("Selector", "string", ".spec.selector", "The selector that identifies the pods to connect to"),
    statusColumn("connector"),
    column("Has Matching Listener", "boolean", ".status.hasMatchingListener", "Whether there is at least one listener in the network with a matching routing key."),
    messageColumn("connector"),
  ],
  RouterAccess: [statusColumn("router access"), column("Message", "string", ".status.message", "Any relevant human readable message")],
  MultiKeyListener: [
    column("Port", "integer", ".spec.port", "The port the service listens on"),
    column("Host", "string", ".spec.host", "The name of the service"),
    statusColumn("listener"),
    column("Has Destination", "boolean", ".status.hasDestination", "Whether at least one of the routing keys is reachable"),
    messageColumn("listener"),
  ],
  SecuredAccess: [statusColumn("secured access"), messageColumn("secured access")],
  Certificate: [
    column("CA", "string", ".spec.ca", "The name of the CA that signs the certificate"),
    column("Server", "boolean", ".spec.server", "Whether the certificate is for a server"),
    column("Client", "boolean", ".spec.client", "Whether the certificate is for a client"),
    column("Signing", "boolean", ".spec.signing", "Whether the certificate is a CA that signs others"),
    statusColumn("certificate"),
    column("Expiration", "string", ".status.expiration", "When the certificate expires"),
    messageColumn("certificate"),
  ],
  AttachedConnector: [
    column("Site Namespace", "string", ".spec.siteNamespace", "The namespace of the site that serves the connector"),
    column("Selector", "string", ".spec.selector", "The selector that identifies the pods to connect to"),
    column("Port", "integer", ".spec.port", "The port to connect to"),
    statusColumn("connector"),
    messageColumn("connector"),
  ],
  AttachedConnectorBinding: [
    column("Routing Key", "string", ".spec.routingKey", "The key that ties connectors and listeners together"),
    column("Connector Namespace", "string", ".spec.connectorNamespace", "The namespace of the AttachedConnector"),
    statusColumn("connector binding"),
    column("Has Matching Listener", "boolean", ".status.hasMatchingListener", "Whether there is at least one listener in the network with a matching routing key."),
    messageColumn("connector binding"),
  ],
};

// ---- the definitions ------------------------------------------------------------------------

export function customResourceDefinition(kind: CustomResourceKind): CustomResourceDefinition {
  const plural = pluralName(kind);
  const shortNames = [...SHORT_NAMES[kind]];
  const openAPIV3Schema: JsonSchemaProps = {
    type: "object",
    description: DESCRIPTIONS[kind],
    properties: {
      apiVersion: string(),
      kind: string(),
      metadata: { type: "object" },
      spec: specSchema(kind),
      status: STATUS[kind],
    },
    ...(specRequired(kind) ? { required: ["spec"] } : {}),
  };
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${plural}.${GROUP}` },
    spec: {
      group: GROUP,
      names: { kind, listKind: `${kind}List`, plural, singular: kind.toLowerCase(), ...(shortNames.length ? { shortNames } : {}) },
      scope: "Namespaced",
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          schema: { openAPIV3Schema },
          subresources: { status: {} },
          additionalPrinterColumns: PRINTER_COLUMNS[kind],
        },
      ],
    },
  };
}

export function customResourceDefinitions(): CustomResourceDefinition[] {
  return CUSTOM_RESOURCE_KINDS.map(customResourceDefinition);
}

/** Where the generated file lives, relative to the repository root. */
export const CRDS_FILE = "deploy/kubernetes/crds.yaml";

const HEADER = [
  `# The CustomResourceDefinitions of ${API_VERSION}, for Kubernetes 1.20 and newer.`,
  "# Generated by src/api/crds.ts from the resource schemas in src/api/schemas.ts: do not edit.",
  "# Regenerate with `npm run generate`; test/unit/crds.test.ts fails while this file is stale.",
  "",
].join("\n");

/** All the definitions as one multi-document YAML file (what `kubectl apply -f` takes). */
export function crdsYaml(): string {
  return HEADER + customResourceDefinitions().map((crd) => `---\n${stringify(crd, { lineWidth: 0 })}`).join("");
}
