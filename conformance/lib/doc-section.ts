// docs/conformance.md is written by two reporters: conformance/report.ts (the whole page) and
// conformance/runtime-tools.ts (one section, between these markers). Each keeps the other's part.
export const BEGIN = "<!-- runtime-tools:begin -->";
export const END = "<!-- runtime-tools:end -->";

/** The marked section of doc (markers included), or undefined. */
export function sectionOf(doc: string): string | undefined {
  const b = doc.indexOf(BEGIN);
  const e = doc.indexOf(END);
  return b >= 0 && e > b ? doc.slice(b, e + END.length) : undefined;
}

/** doc with its marked section replaced by text, or text put before "## Results". */
export function withSection(doc: string, text: string): string {
  const b = doc.indexOf(BEGIN);
  const e = doc.indexOf(END);
  if (b >= 0 && e > b) return doc.slice(0, b) + text + doc.slice(e + END.length);
  const r = doc.indexOf("\n## Results");
  return r >= 0 ? `${doc.slice(0, r + 1)}${text}\n\n${doc.slice(r + 1)}` : `${doc.trimEnd()}\n\n${text}\n`;
}
