/**
 * Lua shared by FluxPay's scripts and the billing store's: records kept as JSON the scripts can
 * change without decoding it. A record is a hash: `b` is the JSON object of the fields that never
 * change, each field named `.<name>` holds the JSON value of one field that does, and fields
 * without a dot are plain values the scripts read (an owner's id, an amount). `render` joins `b`
 * and the dotted fields into the record's JSON, so a record leaves Redis as the JSON the port
 * returns and an outbox payload is a copy made by concatenation. Numbers are written with `n`
 * (`%d`): Lua's own number-to-string keeps 14 digits only.
 */
export const RECORDS = `
local function q(s) return cjson.encode(s) end
local function n(x) return string.format('%d', x) end
-- A JSON string (an id, a status) as the plain string it holds.
local function unq(json) return cjson.decode(json) end
local function render(key)
  local flat = redis.call('HGETALL', key)
  if #flat == 0 then return nil end
  local base, parts = '{}', {}
  for i = 1, #flat, 2 do
    local field = flat[i]
    if field == 'b' then base = flat[i + 1]
    elseif string.sub(field, 1, 1) == '.' then parts[#parts + 1] = '"' .. string.sub(field, 2) .. '":' .. flat[i + 1] end
  end
  if #parts == 0 then return base end
  if base == '{}' then return '{' .. table.concat(parts, ',') .. '}' end
  return string.sub(base, 1, -2) .. ',' .. table.concat(parts, ',') .. '}'
end
-- A JSON array with one more item.
local function append(array, item)
  if array == '[]' then return '[' .. item .. ']' end
  return string.sub(array, 1, -2) .. ',' .. item .. ']'
end
`;

/** A record's hash fields: `b` (the JSON of `fixed`), a `.<name>` field per value of `changing` (as JSON), then `plain` as it is. */
export function recordFields(fixed: object, changing: Record<string, unknown>, plain: Record<string, string | number>): string[] {
  const fields = ['b', JSON.stringify(fixed)];
  for (const [name, value] of Object.entries(changing)) fields.push(`.${name}`, JSON.stringify(value ?? null));
  for (const [name, value] of Object.entries(plain)) fields.push(name, String(value));
  return fields;
}
