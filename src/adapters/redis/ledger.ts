import type { Redis } from 'ioredis';
import { isBalanced, sortBalances, type LedgerAccount, type LedgerBalance, type LedgerEntry, type LedgerTransaction } from '../../core/ledger.ts';
import type { LedgerStore } from '../../core/ports.ts';
import { defineScript, type Script } from './connection.ts';

/*
 * Keys (L = prefix .. 'ledger:'): KEYS[1] order (zset: entry id → write sequence), KEYS[2] entries
 * (hash: entry id → entry JSON), KEYS[3] references (hash: reference → transaction JSON), KEYS[4]
 * totals (hash: account .. '\t' .. currency .. '\t' .. d|c|n → debits, credits, entries), KEYS[5]
 * sums (hash: debits, credits), KEYS[6] seq (counter).
 */
const COUNT = `
-- Adds (sign 1) or takes away (sign -1) an entry on its side of its row and of the ledger.
local function count(row, direction, amount, sign)
  local side = 'c'
  local sum = 'credits'
  if direction == 'DEBIT' then side, sum = 'd', 'debits' end
  redis.call('HINCRBY', KEYS[4], row .. '\\t' .. side, sign * amount)
  redis.call('HINCRBY', KEYS[5], sum, sign * amount)
  if redis.call('HINCRBY', KEYS[4], row .. '\\tn', sign) == 0 then
    redis.call('HDEL', KEYS[4], row .. '\\td', row .. '\\tc', row .. '\\tn')
  end
end
`;

const POST = `${COUNT}
-- ARGV: reference, transaction JSON, balanced ('1'), then per entry: id, JSON, row, direction, amount
local existing = redis.call('HGET', KEYS[3], ARGV[1])
if existing then return {'existing', existing} end
if ARGV[3] ~= '1' then return {'unbalanced'} end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
for i = 4, #ARGV, 5 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  redis.call('ZADD', KEYS[1], redis.call('INCR', KEYS[6]), ARGV[i])
  count(ARGV[i + 2], ARGV[i + 3], tonumber(ARGV[i + 4]), 1)
end
return {'posted'}
`;

const REMOVE = `${COUNT}
-- ARGV: reference
local transaction = redis.call('HGET', KEYS[3], ARGV[1])
if not transaction then return 0 end
local entries = cjson.decode(transaction).entries
for _, entry in ipairs(entries) do
  redis.call('HDEL', KEYS[2], entry.entryId)
  redis.call('ZREM', KEYS[1], entry.entryId)
  count(entry.account .. '\\t' .. entry.currency, entry.direction, entry.amount, -1)
end
redis.call('HDEL', KEYS[3], ARGV[1])
return #entries
`;

const ENTRIES = `
-- In chunks: unpack has a limit on how many values it spreads.
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
local out = {}
for from = 1, #ids, 1000 do
  local chunk = redis.call('HMGET', KEYS[2], unpack(ids, from, math.min(from + 999, #ids)))
  for _, json in ipairs(chunk) do out[#out + 1] = json end
end
return out
`;

const REFERENCE = `return redis.call('HGET', KEYS[3], ARGV[1]) or ''`;

const TOTALS = `return {redis.call('HGETALL', KEYS[4]), redis.call('HMGET', KEYS[5], 'debits', 'credits')}`;

/**
 * The ledger in Redis, shared by every replica: a transaction's entries and the running totals
 * they change are written by one Lua script, idempotent by reference (of any number of concurrent
 * posts for one reference exactly one writes), and a reference's removal takes all its entries in
 * one script, so debits equal credits at every moment. Entries keep the order written (a sequence
 * number). Whether a transaction balances is checked by the caller's process (it reads no state);
 * the script refuses to write one that does not, after answering an existing transaction of its
 * reference as memory does. `entries()` without a reference reads every entry, as memory does.
 */
export class RedisLedgerStore implements LedgerStore {
  readonly #keys: string[];
  readonly #post: Script;
  readonly #remove: Script;
  readonly #entries: Script;
  readonly #reference: Script;
  readonly #totals: Script;

  constructor(client: Redis, options: { keyPrefix: string }) {
    const l = `${options.keyPrefix}ledger:`;
    this.#keys = ['order', 'entries', 'refs', 'totals', 'sums', 'seq'].map((name) => l + name);
    this.#post = defineScript(client, 'paysimLedgerPost', POST);
    this.#remove = defineScript(client, 'paysimLedgerRemove', REMOVE);
    this.#entries = defineScript(client, 'paysimLedgerEntries', ENTRIES);
    this.#reference = defineScript(client, 'paysimLedgerReference', REFERENCE);
    this.#totals = defineScript(client, 'paysimLedgerTotals', TOTALS);
  }

  async post(transaction: LedgerTransaction): Promise<LedgerTransaction> {
    const balanced = isBalanced(transaction.entries) && transaction.entries.every((e) => e.reference === transaction.reference);
    const stored = copyTransaction(transaction);
    const args: Array<string | number> = [transaction.reference, JSON.stringify(stored), balanced ? '1' : '0'];
    for (const entry of stored.entries) args.push(entry.entryId, JSON.stringify(entry), `${entry.account}\t${entry.currency}`, entry.direction, entry.amount);
    const [kind, existing] = (await this.#post(this.#keys, args)) as [string, string?];
    if (kind === 'existing') return JSON.parse(existing as string) as LedgerTransaction;
    if (kind === 'unbalanced') throw new Error(`ledger transaction ${transaction.transactionId} does not balance`);
    return stored;
  }

  async entries(reference?: string): Promise<LedgerEntry[]> {
    if (reference !== undefined) {
      const transaction = (await this.#reference(this.#keys, [reference])) as string;
      return transaction === '' ? [] : (JSON.parse(transaction) as LedgerTransaction).entries.map((e) => ({ ...e }));
    }
    return ((await this.#entries(this.#keys, [])) as string[]).map((json) => JSON.parse(json) as LedgerEntry);
  }

  async balances(): Promise<LedgerBalance[]> {
    const [flat] = (await this.#totals(this.#keys, [])) as [string[], unknown];
    const rows = new Map<string, LedgerBalance>();
    for (let i = 0; i < flat.length; i += 2) {
      const [account, currency, side] = (flat[i] as string).split('\t') as [LedgerAccount, string, string];
      const key = `${account}\t${currency}`;
      const row = rows.get(key) ?? { account, currency, debits: 0, credits: 0, balance: 0 };
      rows.set(key, row);
      if (side === 'd') row.debits = Number(flat[i + 1]);
      else if (side === 'c') row.credits = Number(flat[i + 1]);
    }
    for (const row of rows.values()) row.balance = row.debits - row.credits;
    return sortBalances([...rows.values()]);
  }

  async imbalance(): Promise<number> {
    const [, [debits, credits]] = (await this.#totals(this.#keys, [])) as [unknown, [string | null, string | null]];
    return Number(debits ?? 0) - Number(credits ?? 0);
  }

  async removeReference(reference: string): Promise<number> {
    return Number(await this.#remove(this.#keys, [reference]));
  }
}

function copyTransaction(transaction: LedgerTransaction): LedgerTransaction {
  return { transactionId: transaction.transactionId, reference: transaction.reference, entries: transaction.entries.map((e) => ({ ...e })) };
}
