/**
 * STAND-IN for the generated CRDs (src/api/crds.ts replaces this at merge): for every Skupper
 * kind a CRD of skupper.io/v2alpha1 with the status subresource and a schema that keeps every
 * field. Only what the KubernetesResourceStore tests need.
 */
import { stringify } from "yaml";

export const CRD_KINDS = ["Site", "Link", "AccessGrant", "AccessToken", "Listener", "Connector", "RouterAccess"] as const;

function plural(kind: string): string {
  const lower = kind.toLowerCase();
  return lower.endsWith("s") ? `${lower}es` : `${lower}s`;
}

const open = { type: "object", "x-kubernetes-preserve-unknown-fields": true };

/** The CRDs, as objects. */
export function standInCrds(): Array<Record<string, unknown>> {
  return CRD_KINDS.map((kind) => ({
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${plural(kind)}.skupper.io` },
    spec: {
      group: "skupper.io",
      scope: "Namespaced",
      names: { kind, plural: plural(kind), singular: kind.toLowerCase(), listKind: `${kind}List` },
      versions: [
        {
          name: "v2alpha1",
          served: true,
          storage: true,
          subresources: { status: {} },
          schema: { openAPIV3Schema: { ...open, properties: { spec: open, status: open } } },
        },
      ],
    },
  }));
}

/** The CRDs as one multi-document YAML, for `kubectl apply -f -`. */
export function standInCrdsYaml(): string {
  return standInCrds().map((crd) => stringify(crd)).join("---\n");
}

export function crdNames(): string[] {
  return CRD_KINDS.map((kind) => `${plural(kind)}.skupper.io`);
}
