// Document-level parsing of a multi-document YAML file, so that an edit re-parses only the
// documents whose text changed. The `yaml` parser costs about 0.2–0.5 ms per small document on
// the benchmark VM, so re-parsing a 100-document file for a one-line edit took 20–60 ms of the
// change-to-agent delay; a text split plus one document costs well under a millisecond.
//
// The split is textual: a YAML document starts at a line beginning with `---` followed by a blank
// or the end of the line (YAML 1.2 forbids such a line inside any scalar, so it always is a
// marker). Anything this module cannot reproduce exactly as parseAllDocuments() on the whole file
// makes it give up (return undefined) and the caller parses the whole file: a `%` directive (it
// applies across documents), a `...` end marker, a syntax error, a schema error (the whole-file
// path words the issues), or a piece that does not hold exactly one document.
//
// Invariants: only valid documents are cached; a cached document is reused only for the same text;
// document numbers are recomputed on every parse, and an entry keeps its object identity when its
// file, number and text are unchanged.
import { parseAllDocuments } from "yaml";
import { keyOf, keyString, validateDocument } from "./api/index.ts";
import type { SourcedResource } from "./model/model.ts";

/** One piece of a file: no document (comments only), an empty document, or a resource. */
interface DocumentResult {
  count: 0 | 1;
  entry: SourcedResource | undefined;
}

/** Document text → its result, for one file. */
export type ParsedDocuments = ReadonlyMap<string, DocumentResult>;

const MARKER = /^---(?=[ \t\r\n]|$)/gm;
const UNSUPPORTED = /^(%|\.\.\.(?=[ \t\r\n]|$))/m;

/** The file's text cut before every `---` line; undefined when the text has directives or `...`. */
export function splitDocuments(content: string): string[] | undefined {
  if (UNSUPPORTED.test(content)) return undefined;
  const out: string[] = [];
  let start = 0;
  for (const m of content.matchAll(MARKER)) {
    out.push(content.slice(start, m.index)); // the first one is the text before any marker
    start = m.index;
  }
  out.push(content.slice(start));
  return out;
}

/**
 * The file's valid resources, parsing only documents not in `previous`; undefined when the
 * whole-file parse must decide (see the module comment).
 */
export function parseChangedDocuments(
  file: string,
  content: string,
  previous: ParsedDocuments | undefined,
): { entries: SourcedResource[]; documents: ParsedDocuments } | undefined {
  const pieces = splitDocuments(content);
  if (!pieces) return undefined;
  const entries: SourcedResource[] = [];
  const documents = new Map<string, DocumentResult>();
  let n = 0;
  for (let i = 0; i < pieces.length; i++) {
    const text = pieces[i] as string;
    let got = previous?.get(text) ?? documents.get(text);
    if (!got) {
      got = parseOne(file, text, n + 1);
      if (!got) return undefined;
    }
    // Only the text before the first marker may hold no document (blank lines, comments).
    if (got.count === 0 && i > 0) return undefined;
    n += got.count;
    let entry = got.entry;
    if (entry && (entry.document !== n || entry.file !== file)) {
      entry = { ...entry, file, document: n };
      got = { count: 1, entry };
    }
    documents.set(text, got);
    if (entry) entries.push(entry);
  }
  return { entries, documents };
}

function parseOne(file: string, text: string, n: number): DocumentResult | undefined {
  const docs = [...parseAllDocuments(text, { prettyErrors: false })];
  if (docs.length === 0) return { count: 0, entry: undefined };
  const doc = docs[0];
  if (docs.length > 1 || !doc || doc.errors.length > 0) return undefined;
  let value: unknown;
  try {
    value = doc.toJS();
  } catch {
    return undefined; // an unresolved alias or an alias bomb: the whole-file parse words the issue
  }
  if (value === null || value === undefined) return { count: 1, entry: undefined };
  const r = validateDocument(value, file, n);
  if (!r.ok) return undefined;
  const entry: SourcedResource = {
    resource: r.resource,
    file,
    document: n,
    json: JSON.stringify(r.resource),
    key: keyString(keyOf(r.resource)),
  };
  return { count: 1, entry };
}
