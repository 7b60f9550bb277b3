import type { Credentials } from "../../certs/index.js";
import type { CredentialStore } from "../types.js";
import { FaultInjector, type FaultOptions } from "./faults.js";

export type CredentialOperation = "save" | "load" | "remove";

export interface CredentialFaultOptions extends FaultOptions {
  /** Only calls for credentials of this name fail. */
  name?: string;
}

/** A CredentialStore in a Map (exposed as `saved` for assertions), with injectable failures. */
export class MemoryCredentialStore implements CredentialStore {
  readonly saved = new Map<string, Credentials>();
  private readonly faults = new FaultInjector<CredentialOperation>();

  failNext(op: CredentialOperation, options: CredentialFaultOptions = {}): void {
    this.faults.add(op, (name) => options.name === undefined || options.name === name, options);
  }

  async load(name: string): Promise<Credentials | undefined> {
    this.faults.check("load", name);
    const credentials = this.saved.get(name);
    return credentials ? { ...credentials } : undefined;
  }

  async save(name: string, credentials: Credentials): Promise<void> {
    this.faults.check("save", name);
    this.saved.set(name, { ...credentials });
  }

  async remove(name: string): Promise<void> {
    this.faults.check("remove", name);
    this.saved.delete(name);
  }
}
