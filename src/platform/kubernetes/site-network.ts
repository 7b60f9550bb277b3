/**
 * How a site in a Kubernetes namespace is reached and reaches services (the SiteNetwork of
 * ../types.ts):
 *
 * - link access is the Service `skupper-router` in front of the site's pods, of the type
 *   `Site.spec.linkAccess` asks for: `nodeport` a NodePort, `loadbalancer` a LoadBalancer,
 *   anything else that enables it (`default`, `true`) a ClusterIP Service. Remote sites are told
 *   the Service's address and DNS names (ClusterIP), the node's address and node ports
 *   (NodePort), or the load balancer's address (LoadBalancer);
 * - a Listener is a ClusterIP Service named by its `spec.host`, port `spec.port`, in front of the
 *   site's pods, where the site process listens on a port of its own (the same number when it
 *   is free and not privileged);
 * - a Connector's `spec.selector` chooses pods of the namespace, followed with a watch.
 *
 * Services carry Skupper's labels and an owner reference to the Site, so deleting the Site
 * removes them.
 */
import { CoreV1Api, makeInformer, type KubeConfig, type V1OwnerReference, type V1Pod, type V1Service, type V1ServicePort } from "@kubernetes/client-node";
import { isDeepStrictEqual } from "node:util";
import type { Listener, Resource, Site } from "../../api/index.js";
import { errorMessage } from "../../common/errors.js";
import { logger } from "../../common/log.js";
import type { LinkAccessExposure, LinkAccessPorts, PublishedListener, SelectorWatch, SiteNetwork } from "../types.js";
import { CoreObjects, MANAGED_BY, MANAGED_BY_LABEL, SKUPPER_LABELS } from "./core-objects.js";
import { GRANT_PORT_NAME, LINK_PORT_NAME, ROUTER_POD_LABELS, ROUTER_SERVICE } from "./names.js";
import { SKUPPER_GROUP, SKUPPER_VERSION } from "./resource-store.js";

const log = logger("kube-network");

/** Label on a listener's Service: the Listener it serves. */
export const LISTENER_LABEL = "skupper.io/listener";
/** Where listeners whose own port cannot be used are placed in the site's pod. */
export const LISTENER_PORT_RANGE = { first: 20000, last: 29999 } as const;
/** How often to look again for a load balancer's address. */
const LOAD_BALANCER_RETRY_MS = 5000;
/** How long a failed pod watch waits before it starts again. */
const WATCH_RESTART_MS = 5000;
/** The address a listener binds in the site's pod: every address, the Service picks the pod. */
const POD_ANY_ADDRESS = "0.0.0.0";

export interface KubernetesSiteNetworkOptions {
  /** The node's address, for NodePort link access (the pod's `status.hostIP`; env SKUPPER_NODE_IP). */
  nodeAddress?: string;
}

export class KubernetesSiteNetwork implements SiteNetwork {
  private readonly core: CoreObjects;
  private readonly watches = new Set<SelectorWatch>();

  constructor(
    private readonly config: KubeConfig,
    readonly namespace: string,
    private readonly options: KubernetesSiteNetworkOptions = {},
  ) {
    this.core = new CoreObjects(config, namespace);
  }

  // ---- link access ----

  async exposeLinkAccess(site: Site, ports: LinkAccessPorts): Promise<LinkAccessExposure> {
    const type = serviceType(site.spec.linkAccess);
    const existing = await this.core.readService(ROUTER_SERVICE);
    if (existing && !isOurs(existing)) {
      return { pending: `a Service "${ROUTER_SERVICE}" exists in namespace "${this.namespace}" and is not Skupper's; delete it so the site can expose link access`, retryAfterMs: 30_000 };
    }
    const desired = linkAccessService(site, ports, type, existing);
    const service = await this.apply(desired, existing);
    return this.exposure(service, type);
  }

  async withdrawLinkAccess(): Promise<void> {
    const existing = await this.core.readService(ROUTER_SERVICE);
    if (existing && isOurs(existing)) await this.core.deleteService(ROUTER_SERVICE);
  }

  private exposure(service: V1Service, type: ServiceType): LinkAccessExposure {
    const linkPort = service.spec?.ports?.find((p) => p.name === LINK_PORT_NAME);
    const grantPort = service.spec?.ports?.find((p) => p.name === GRANT_PORT_NAME);
    if (!linkPort || !grantPort) return { pending: `the Service "${ROUTER_SERVICE}" has no ${LINK_PORT_NAME} or ${GRANT_PORT_NAME} port`, retryAfterMs: LOAD_BALANCER_RETRY_MS };
    if (type === "NodePort") {
      if (!linkPort.nodePort || !grantPort.nodePort) return { pending: `the Service "${ROUTER_SERVICE}" has no node ports yet`, retryAfterMs: LOAD_BALANCER_RETRY_MS };
      const hosts = this.options.nodeAddress ? [this.options.nodeAddress] : [];
      return { hosts, linkPort: linkPort.nodePort, grantServerPort: grantPort.nodePort };
    }
    if (type === "LoadBalancer") {
      const ingress = service.status?.loadBalancer?.ingress ?? [];
      const hosts = ingress.map((i) => i.ip ?? i.hostname).filter((h): h is string => !!h);
      if (hosts.length === 0) {
        return { pending: `waiting for the load balancer of Service "${ROUTER_SERVICE}" to get an address (a cluster without a load balancer never gives one: use link access type nodeport)`, retryAfterMs: LOAD_BALANCER_RETRY_MS };
      }
      return { hosts, linkPort: linkPort.port, grantServerPort: grantPort.port };
    }
    const clusterIp = service.spec?.clusterIP;
    // The address first: it is what tokens carry, and needs no cluster DNS to be dialled.
    const hosts = [...(clusterIp && clusterIp !== "None" ? [clusterIp] : []), `${ROUTER_SERVICE}.${this.namespace}`, `${ROUTER_SERVICE}.${this.namespace}.svc`];
    return { hosts, linkPort: linkPort.port, grantServerPort: grantPort.port };
  }

  // ---- listeners ----

  async publishListeners(site: Site, listeners: Listener[]): Promise<Map<string, PublishedListener | { problem: string }>> {
    const placements = placeListeners(listeners);
    const existing = new Map((await this.core.listServices(LISTENER_LABEL)).map((s) => [s.metadata?.name ?? "", s]));
    const published = new Map<string, PublishedListener | { problem: string }>();
    const wanted = new Set<string>();
    for (const listener of listeners) {
      const name = listener.metadata.name;
      const placement = placements.get(name);
      if (!placement || "problem" in placement) {
        published.set(name, placement ?? { problem: "not placed" });
        continue;
      }
      const serviceName = listener.spec.host;
      wanted.add(serviceName);
      try {
        const current = existing.get(serviceName) ?? (await this.core.readService(serviceName));
        if (current && !isOurs(current)) {
          published.set(name, { problem: `a Service "${serviceName}" exists in namespace "${this.namespace}" and is not Skupper's; choose another host or delete it` });
          continue;
        }
        await this.apply(listenerService(site, listener, placement.port), current);
        published.set(name, { host: POD_ANY_ADDRESS, port: placement.port });
      } catch (err) {
        published.set(name, { problem: `cannot make the Service "${serviceName}": ${errorMessage(err)}` });
      }
    }
    for (const [serviceName, service] of existing) {
      if (!wanted.has(serviceName) && isOurs(service)) {
        log.info(`deleting the Service "${serviceName}" of a listener that no longer exists`);
        await this.core.deleteService(serviceName);
      }
    }
    return published;
  }

  /** Creates the Service or replaces it when it differs from what is wanted; returns it as stored. */
  private async apply(desired: V1Service, current: V1Service | undefined): Promise<V1Service> {
    if (!current) return this.core.createService(desired);
    if (sameService(desired, current)) return current;
    const body: V1Service = {
      ...desired,
      metadata: { ...desired.metadata, resourceVersion: current.metadata?.resourceVersion },
      // The API server assigns these once; a replace must keep them.
      spec: { ...desired.spec, clusterIP: current.spec?.clusterIP, ...(current.spec?.clusterIPs ? { clusterIPs: current.spec.clusterIPs } : {}) },
    };
    return (await this.core.replaceService(body)) ?? this.core.createService(desired);
  }

  // ---- connectors ----

  watchSelector(selector: string, onChange: () => void): SelectorWatch {
    const watch = new PodWatch(this.config, this.namespace, selector, onChange, () => this.watches.delete(watch));
    this.watches.add(watch);
    return watch;
  }

  async close(): Promise<void> {
    for (const watch of [...this.watches]) watch.close();
  }
}

type ServiceType = "ClusterIP" | "NodePort" | "LoadBalancer";

function serviceType(linkAccess: string | undefined): ServiceType {
  switch ((linkAccess ?? "").toLowerCase()) {
    case "nodeport":
      return "NodePort";
    case "loadbalancer":
      return "LoadBalancer";
    default:
      return "ClusterIP";
  }
}

function ownerReference(owner: Resource): V1OwnerReference[] {
  if (!owner.metadata.uid) return [];
  return [{ apiVersion: `${SKUPPER_GROUP}/${SKUPPER_VERSION}`, kind: owner.kind, name: owner.metadata.name, uid: owner.metadata.uid, controller: true, blockOwnerDeletion: true }];
}

function isOurs(service: V1Service): boolean {
  return service.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY;
}

export function linkAccessService(site: Site, ports: LinkAccessPorts, type: ServiceType, existing: V1Service | undefined): V1Service {
  // Node ports are kept across updates: remote sites were told them.
  const nodePort = (name: string) => (type === "NodePort" ? existing?.spec?.ports?.find((p) => p.name === name)?.nodePort : undefined);
  const port = (name: string, number: number): V1ServicePort => {
    const kept = nodePort(name);
    return { name, port: number, targetPort: number as never, protocol: "TCP", ...(kept ? { nodePort: kept } : {}) };
  };
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: ROUTER_SERVICE, labels: { ...SKUPPER_LABELS, "skupper.io/component": "router" }, ownerReferences: ownerReference(site) },
    spec: { type, selector: { ...ROUTER_POD_LABELS }, ports: [port(LINK_PORT_NAME, ports.linkPort), port(GRANT_PORT_NAME, ports.grantServerPort)] },
  };
}

export function listenerService(site: Site, listener: Listener, podPort: number): V1Service {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: {
      name: listener.spec.host,
      labels: { ...SKUPPER_LABELS, [LISTENER_LABEL]: listener.metadata.name, "skupper.io/site": site.metadata.name },
      // The Site's, not the Listener's: deleting the Site removes everything it made. A deleted
      // Listener's Service is removed by the next publishListeners.
      ownerReferences: ownerReference(site),
    },
    spec: { type: "ClusterIP", selector: { ...ROUTER_POD_LABELS }, ports: [{ name: "tcp", port: listener.spec.port, targetPort: podPort as never, protocol: "TCP" }] },
  };
}

/** Whether `current` already has everything `desired` asks for. */
function sameService(desired: V1Service, current: V1Service): boolean {
  const labels = current.metadata?.labels ?? {};
  if (!Object.entries(desired.metadata?.labels ?? {}).every(([k, v]) => labels[k] === v)) return false;
  const owners = (current.metadata?.ownerReferences ?? []).map((o) => o.uid);
  if (!(desired.metadata?.ownerReferences ?? []).every((o) => owners.includes(o.uid))) return false;
  const spec = current.spec ?? {};
  if (spec.type !== desired.spec?.type || !isDeepStrictEqual(spec.selector ?? {}, desired.spec?.selector ?? {})) return false;
  const ports = (list: V1ServicePort[] | undefined) => (list ?? []).map((p) => ({ name: p.name, port: p.port, targetPort: Number(p.targetPort ?? p.port), protocol: p.protocol ?? "TCP" }));
  return isDeepStrictEqual(ports(spec.ports), ports(desired.spec?.ports));
}

/** A DNS-1035 label: what Kubernetes accepts as a Service name. */
const SERVICE_NAME = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

/**
 * Where each listener listens in the site's pod: its own port when that is not privileged, not
 * taken by an earlier listener (by name) and not the site's own; else the first free port of
 * LISTENER_PORT_RANGE. Two listeners cannot share a Service name.
 */
export function placeListeners(listeners: Listener[], reserved: number[] = [55671, 9090]): Map<string, { port: number } | { problem: string }> {
  const placements = new Map<string, { port: number } | { problem: string }>();
  const usedPorts = new Set<number>(reserved);
  const services = new Map<string, string>();
  const sorted = [...listeners].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  const wantsOwnPort: Listener[] = [];
  for (const listener of sorted) {
    const { name } = listener.metadata;
    const host = listener.spec.host;
    if (!SERVICE_NAME.test(host) || host.length > 63) {
      placements.set(name, { problem: `host "${host}" is not a valid Service name on Kubernetes (lower case letters, digits and "-", starting with a letter, at most 63 characters)` });
      continue;
    }
    if (host === ROUTER_SERVICE) {
      placements.set(name, { problem: `host "${host}" is the name of the site's own Service; choose another` });
      continue;
    }
    const other = services.get(host);
    if (other) {
      placements.set(name, { problem: `the Service "${host}" is already used by listener "${other}"` });
      continue;
    }
    services.set(host, name);
    wantsOwnPort.push(listener);
  }
  const needsPort: Listener[] = [];
  for (const listener of wantsOwnPort) {
    const port = listener.spec.port;
    if (port >= 1024 && !usedPorts.has(port)) {
      usedPorts.add(port);
      placements.set(listener.metadata.name, { port });
    } else {
      needsPort.push(listener);
    }
  }
  let next: number = LISTENER_PORT_RANGE.first;
  for (const listener of needsPort) {
    while (usedPorts.has(next)) next++;
    if (next > LISTENER_PORT_RANGE.last) {
      placements.set(listener.metadata.name, { problem: "no free port is left in the site's pod for this listener" });
      continue;
    }
    usedPorts.add(next);
    placements.set(listener.metadata.name, { port: next });
  }
  return placements;
}

/** The pods a selector chooses, from a list-and-watch; `onChange` when the addresses change. */
class PodWatch implements SelectorWatch {
  problem: string | undefined;
  private readonly informer;
  private seen = "";
  private closed = false;
  private restart: NodeJS.Timeout | undefined;

  constructor(
    config: KubeConfig,
    namespace: string,
    private readonly selector: string,
    private readonly onChange: () => void,
    private readonly onClose: () => void,
  ) {
    const api = config.makeApiClient(CoreV1Api);
    this.informer = makeInformer<V1Pod>(config, `/api/v1/namespaces/${namespace}/pods`, () => api.listNamespacedPod({ namespace, labelSelector: selector }), selector);
    const changed = () => this.changed();
    this.informer.on("add", changed);
    this.informer.on("update", changed);
    this.informer.on("delete", changed);
    this.informer.on("error", (err: unknown) => this.failed(err));
    this.informer.start().then(changed, (err: unknown) => this.failed(err));
  }

  addresses(includeNotReady: boolean): string[] {
    const addresses = new Set<string>();
    for (const pod of this.informer.list()) {
      const ip = pod.status?.podIP;
      if (!ip || pod.metadata?.deletionTimestamp || pod.status?.phase !== "Running") continue;
      const ready = pod.status.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
      if (ready || includeNotReady) addresses.add(ip);
    }
    return [...addresses].sort();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.restart);
    void this.informer.stop().catch(() => undefined);
    this.onClose();
  }

  private changed(): void {
    if (this.closed) return;
    const now = JSON.stringify([this.problem, this.addresses(false), this.addresses(true)]);
    if (now === this.seen) return;
    this.seen = now;
    this.onChange();
  }

  private failed(err: unknown): void {
    if (this.closed) return;
    const message = errorMessage(err);
    const status = Number((err as { code?: unknown }).code);
    this.problem = status === 400 ? `the selector "${this.selector}" is not valid: ${message}` : status === 403 ? `the site may not watch pods in its namespace (${message})` : undefined;
    if (!this.problem) log.warn(`watching pods for the selector "${this.selector}" failed: ${message}; starting again in ${WATCH_RESTART_MS / 1000} s`);
    this.changed();
    clearTimeout(this.restart);
    this.restart = setTimeout(() => {
      if (!this.closed) this.informer.start().then(() => this.changed(), (e: unknown) => this.failed(e));
    }, WATCH_RESTART_MS);
    this.restart.unref();
  }
}
