/**
 * Certificate: a certificate in the Secret of the same name (`tls.crt`, `tls.key`, `ca.crt`),
 * as the original's Kubernetes controller makes them: issued by the CA in the Secret `spec.ca`
 * (`skupper-site-ca` is the site's own CA), or a self-signed CA for `signing` with no `ca`. It
 * is made again when it no longer matches (subject, hosts, issuer) or nears its expiry. A
 * Secret of that name that skupper did not make is never replaced: if it does not match, the
 * status says so. Deleting the Certificate deletes the Secret skupper made for it.
 */
import {
  ConditionType,
  failed,
  ready,
  requiredConditions,
  secretValue,
  setCondition,
  SITE_CA,
  withAggregate,
  type Certificate,
  type CommonStatus,
  type Secret,
} from "../../api/index.js";
import { createCA, describeCertificate, isCurrent, isIssuedBy, issueCertificate, RENEW_BEFORE_MS, uniqueHosts, type CertificateUsage, type Credentials } from "../../certs/index.js";
import { AlreadyExistsError, NotFoundError } from "../../common/errors.js";
import { userIssuer } from "../../grants/index.js";
import { finishIfDeleted, step, type ControllerContext, type Reconciler } from "../context.js";
import type { ReconcileResult } from "../work-queue.js";

/** On a Secret made for a Certificate: the Certificate's name. */
export const CERTIFICATE_ANNOTATION = "skupper.io/certificate";

/** How often a Certificate is looked at again at most, for its renewal. */
const RECHECK_MS = 6 * 3_600_000;

export class CertificateReconciler implements Reconciler {
  readonly kind = "Certificate";

  constructor(private readonly ctx: ControllerContext) {}

  async reconcile(name: string): Promise<ReconcileResult> {
    const { ctx } = this;
    if (await finishIfDeleted(ctx, "Certificate", name)) {
      const secret = ctx.cache.live("Secret", name);
      if (secret && madeFor(secret, name)) await step("deleting the certificate's Secret", () => ctx.store.delete("Secret", name).catch(ignoreNotFound));
      return;
    }
    const certificate = ctx.cache.get("Certificate", name) as Certificate;
    const problem = await this.ensureSecret(certificate);
    await ctx.status.write("Certificate", name, () => {
      const live = ctx.cache.live("Certificate", name);
      if (!live) return undefined;
      const now = new Date().toISOString();
      const conditions = setCondition(live.status?.conditions, ConditionType.Configured, problem ? failed(problem) : ready(), now);
      const status: CommonStatus = withAggregate({ conditions }, requiredConditions("Certificate"), now);
      return { ...status, observedGeneration: live.metadata.generation ?? 1 };
    });
    return { retryAfterMs: RECHECK_MS };
  }

  /** Makes the Secret if it is missing or stale; why it cannot, if so. */
  private async ensureSecret(certificate: Certificate): Promise<string | undefined> {
    const { ctx } = this;
    const name = certificate.metadata.name;
    const { spec } = certificate;
    let issuer: Credentials | undefined;
    if (!(spec.signing && !spec.ca)) {
      const found = await this.issuer(spec.ca);
      if (typeof found === "string") return found;
      issuer = found;
    }
    const existing = ctx.cache.live("Secret", name);
    const mismatch = existing ? secretMismatch(existing, certificate, issuer) : "missing";
    if (!mismatch) return undefined;
    if (existing && !madeFor(existing, name)) {
      return `the Secret "${name}" exists and was not made by skupper, and ${mismatch}; delete it to have skupper make one, or make it match`;
    }
    const hosts = uniqueHosts(spec.hosts ?? []);
    const credentials = !issuer
      ? await createCA(spec.subject)
      : await issueCertificate(issuer, { commonName: spec.subject, hosts, usage: usageOf(certificate), ...(spec.signing ? { authority: true } : {}) });
    const secret: Secret = {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name, annotations: { [CERTIFICATE_ANNOTATION]: name } },
      type: "kubernetes.io/tls",
      data: {
        "tls.crt": Buffer.from(credentials.cert).toString("base64"),
        "tls.key": Buffer.from(credentials.key).toString("base64"),
        "ca.crt": Buffer.from(credentials.ca).toString("base64"),
      },
    };
    const stored = await step(`writing the Secret of Certificate "${name}"`, async () => {
      if (!existing) {
        try {
          return await ctx.store.create(secret);
        } catch (err) {
          if (!(err instanceof AlreadyExistsError)) throw err;
        }
      }
      const current = (await ctx.store.get("Secret", name)) as Secret | undefined;
      if (current && !madeFor(current, name)) throw new Error(`the Secret "${name}" was made by someone else meanwhile`);
      return ctx.store.update({ ...secret, metadata: { ...secret.metadata, ...(current?.metadata.resourceVersion ? { resourceVersion: current.metadata.resourceVersion } : {}) } });
    });
    ctx.cache.set("Secret", name, stored);
    return undefined;
  }

  /** The CA that signs: the site's own for `skupper-site-ca`, else the Secret `name`. */
  private async issuer(name: string | undefined): Promise<Credentials | string> {
    if (!name) return "spec.ca is empty: name the Secret of the CA that signs this certificate, or set spec.signing for a self-signed CA";
    if (name === SITE_CA) {
      const siteCa = await this.ctx.credentials.load(SITE_CA);
      return siteCa ?? `the site's CA "${SITE_CA}" is not made yet; it is made when the site starts`;
    }
    return userIssuer(name, this.ctx.cache.live("Secret", name), "spec.ca");
  }
}

function usageOf(certificate: Certificate): CertificateUsage {
  const { client, server } = certificate.spec;
  if (client && server) return "server-and-client";
  return client ? "client" : "server";
}

function madeFor(secret: Secret, certificate: string): boolean {
  return secret.metadata.annotations?.[CERTIFICATE_ANNOTATION] === certificate;
}

/** What is wrong with the Secret for this Certificate, or undefined when it is right. */
function secretMismatch(secret: Secret, certificate: Certificate, issuer: Credentials | undefined): string | undefined {
  const cert = secretValue(secret, "tls.crt");
  if (!cert || !secretValue(secret, "tls.key")) return "it has no tls.crt and tls.key";
  try {
    const info = describeCertificate(cert);
    if (!isCurrent(cert, RENEW_BEFORE_MS)) return "its certificate expires soon or has expired";
    if (info.commonName !== certificate.spec.subject) return `its certificate's subject is "${info.commonName}", not "${certificate.spec.subject}"`;
    const want = new Set(uniqueHosts(certificate.spec.hosts ?? []));
    const have = new Set(uniqueHosts(info.hosts));
    if (want.size !== have.size || [...want].some((h) => !have.has(h))) return `its certificate's hosts are [${[...have].join(", ")}], not [${[...want].join(", ")}]`;
    if (Boolean(certificate.spec.signing) !== info.isCA) return certificate.spec.signing ? "its certificate is not a CA" : "its certificate is a CA";
    if (issuer && !isIssuedBy(cert, issuer.cert)) return `its certificate is not signed by the CA in "${certificate.spec.ca}"`;
  } catch {
    return "its tls.crt is not a valid certificate";
  }
  return undefined;
}

function ignoreNotFound(err: unknown): void {
  if (!(err instanceof NotFoundError)) throw err;
}
