import { CREDIT_UNIT, POSTING_KINDS, posting } from '../../../core/fluxpay/ledger.ts';
import { OUTBOX } from './outbox.ts';
import { RECORDS } from './records.ts';

/** Every FluxPay script's first arguments, before its own (read with `arg(i)`): P, max, ttl, sweep batch, then the stamp. */
export const HEAD_ARGS = 9;

/** The ledger's sides, from core's own table (posting), so the scripts cannot disagree with it. */
const SIDES = POSTING_KINDS.map((kind) => {
  const [debit, credit] = posting(kind, 'tx', 'ref', 1, CREDIT_UNIT, 0).entries;
  return `${kind} = {'${debit?.account}', '${credit?.account}'}`;
}).join(', ');

/**
 * The start of every FluxPay script: its arguments, the record and outbox helpers, the bound of a
 * kind of record, and the ledger.
 *
 * ARGV: P (the store's prefix), max (maxRecords), ttl, sweep batch, now, transactionId, three event
 * ids (the stamp: '' where an operation has none), then the operation's own from ARGV[10].
 *
 * The ledger (FluxPay's own, core/fluxpay/ledger.ts): P..'l:'..reference (list: its transactions'
 * JSON, in the order written), P..'acct' (hash: account..'\t'..unit..'\t'..d|c → running total, never
 * evicted), P..'evnet' (hash: unit → what evicted orders had collected, net).
 */
export const HEAD = `
local P, MAX, TTL, BATCH = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local NOW, TX, EV = ARGV[5], ARGV[6], {ARGV[7], ARGV[8], ARGV[9]}
local function arg(i) return ARGV[${HEAD_ARGS} + i] end
local CREDIT = '${CREDIT_UNIT}'
${RECORDS}${OUTBOX}
-- Whether one more record fits in the set 'all', evicting the oldest of 'evict' (by score) when the bound is reached.
local function room(all, evict, remove)
  if redis.call('ZCARD', all) < MAX then return true end
  local oldest = redis.call('ZRANGE', evict, 0, 0)[1]
  if not oldest then return false end
  remove(oldest)
  return true
end
local function wholeAmount(kind, amount)
  local value = tonumber(amount)
  if value == nil or value <= 0 or value ~= math.floor(value) then error('a ' .. kind .. ' posting needs a positive whole amount (got ' .. tostring(amount) .. ')') end
  return value
end
local SIDES = {${SIDES}}
local function post(kind, txId, reference, amount, unit, now)
  local sides, a = SIDES[kind], n(wholeAmount(kind, amount))
  local function entry(account, direction)
    return '{"account":"' .. account .. '","direction":"' .. direction .. '","amount":' .. a .. ',"unit":' .. q(unit) .. '}'
  end
  redis.call('RPUSH', P .. 'l:' .. reference, '{"transactionId":' .. q(txId) .. ',"kind":"' .. kind .. '","reference":' .. q(reference)
    .. ',"entries":[' .. entry(sides[1], 'DEBIT') .. ',' .. entry(sides[2], 'CREDIT') .. '],"createdAt":' .. now .. '}')
  redis.call('HINCRBY', P .. 'acct', sides[1] .. '\\t' .. unit .. '\\td', a)
  redis.call('HINCRBY', P .. 'acct', sides[2] .. '\\t' .. unit .. '\\tc', a)
end
`;
