import type { Signer } from './signer.ts';

/**
 * The signers the dispatcher knows, by name. Built-in ones (`standard`, `legacy`, `stripe`) are
 * registered at start; a dialect with a scheme of its own registers its signer too. A delivery
 * names its schemes; an unknown name is refused when the delivery is made, never at sending time.
 */
export class SignerRegistry {
  readonly #signers = new Map<string, Signer>();

  register(signer: Signer): void {
    if (this.#signers.has(signer.name)) throw new Error(`a signer named ${signer.name} is already registered`);
    this.#signers.set(signer.name, signer);
  }

  has(name: string): boolean {
    return this.#signers.has(name);
  }

  /** Every header of the named schemes, for one attempt. */
  headers(schemes: readonly string[], webhookId: string, body: string, nowMs: number): Record<string, string> {
    const headers: Record<string, string> = {};
    for (const name of schemes) {
      const signer = this.#signers.get(name);
      if (signer === undefined) throw new Error(`unknown signature scheme ${name}`);
      Object.assign(headers, signer.headers(webhookId, body, nowMs));
    }
    return headers;
  }
}
