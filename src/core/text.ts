/**
 * Text that is shown on one line (in the logs, the console, the run report's CSV): no control
 * characters (C0, DEL, C1). A regular expression's source, spelled with `\u` escapes, which every
 * dialect reads: JSON Schema patterns (`\P{Cc}` needs ECMAScript's `u` flag, which Spectral's Ajv
 * does not set) and `new RegExp` alike. A fault rule's name, a client's reference.
 */
export const NO_CONTROL_CHARACTERS_SOURCE = '^[^\\u0000-\\u001F\\u007F-\\u009F]*$';
