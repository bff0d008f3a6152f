/**
 * Build step (`make docs/boundary.md`): renders the boundary declaration (boundary/helper.proto,
 * given as a descriptor set that protoc wrote with --include_source_info) as the Markdown
 * reference docs/boundary.md, so the format is documented from the one place it is declared.
 *
 *   bun scripts/gen-boundary-doc.ts build/gen/helper.desc > docs/boundary.md
 */
import { readFileSync } from "node:fs";
import { fromBinary, isFieldSet } from "@bufbuild/protobuf";
import {
  FileDescriptorSetSchema,
  FieldDescriptorProtoSchema,
  type DescriptorProto,
  type EnumDescriptorProto,
  type FieldDescriptorProto,
  type FileDescriptorProto,
  type SourceCodeInfo_Location,
} from "@bufbuild/protobuf/wkt";

// Field numbers of descriptor.proto, which make up source-info paths.
const FILE_SYNTAX = 12;
const FILE_MESSAGE = 4;
const FILE_ENUM = 5;
const MESSAGE_FIELD = 2;
const ENUM_VALUE = 2;

const TYPE_NAMES: Record<number, string> = {
  1: "double", 2: "float", 3: "int64", 4: "uint64", 5: "int32", 6: "fixed64", 7: "fixed32", 8: "bool",
  9: "string", 12: "bytes", 13: "uint32", 15: "sfixed32", 16: "sfixed64", 17: "sint32", 18: "sint64",
};
const LABEL_REPEATED = 3;

function comments(locs: Map<string, SourceCodeInfo_Location>, path: number[]): string {
  const loc = locs.get(path.join("."));
  if (!loc) return "";
  return [loc.leadingComments, loc.trailingComments]
    .filter((c): c is string => !!c)
    .map((c) => c.split("\n").map((l) => l.replace(/^ /, "")).join("\n").trim())
    .join("\n");
}

/** One table cell: line breaks become spaces, pipes are escaped. */
function cell(text: string): string {
  return text.replace(/\s*\n\s*/g, " ").replace(/\|/g, "\\|");
}

function typeName(f: FieldDescriptorProto): string {
  const base = f.typeName ? f.typeName.replace(/^\.(tsrun\.)?/, "") : TYPE_NAMES[f.type] ?? `type ${f.type}`;
  const link = f.typeName && !f.typeName.startsWith(".google.") ? `[${base}](#${base.toLowerCase()})` : base;
  return f.label === LABEL_REPEATED ? `repeated ${link}` : link;
}

function renderMessage(m: DescriptorProto, path: number[], locs: Map<string, SourceCodeInfo_Location>): string {
  const out = [`### ${m.name}`, ""];
  const doc = comments(locs, path);
  if (doc) out.push(doc, "");
  if (m.field.length === 0) {
    out.push("(no fields)", "");
    return out.join("\n");
  }
  out.push("| # | field | type | meaning |", "| ---: | --- | --- | --- |");
  m.field.forEach((f, i) => {
    const oneof = isFieldSet(f, FieldDescriptorProtoSchema.field.oneofIndex) && !f.proto3Optional ? ` (one of \`${m.oneofDecl[f.oneofIndex]!.name}\`)` : "";
    out.push(`| ${f.number} | \`${f.name}\` | ${typeName(f)}${oneof} | ${cell(comments(locs, [...path, MESSAGE_FIELD, i]))} |`);
  });
  out.push("");
  return out.join("\n");
}

function renderEnum(e: EnumDescriptorProto, path: number[], locs: Map<string, SourceCodeInfo_Location>): string {
  const out = [`### ${e.name}`, ""];
  const doc = comments(locs, path);
  if (doc) out.push(doc, "");
  out.push("| value | name | meaning |", "| ---: | --- | --- |");
  e.value.forEach((v, i) => out.push(`| ${v.number} | \`${v.name}\` | ${cell(comments(locs, [...path, ENUM_VALUE, i]))} |`));
  out.push("");
  return out.join("\n");
}

export function renderBoundaryDoc(file: FileDescriptorProto): string {
  const locs = new Map<string, SourceCodeInfo_Location>();
  for (const loc of file.sourceCodeInfo?.location ?? []) locs.set(loc.path.join("."), loc);
  const syntax = locs.get(String(FILE_SYNTAX));
  const header = [...(syntax?.leadingDetachedComments ?? []), syntax?.leadingComments ?? ""]
    .map((c) => c.split("\n").map((l) => l.replace(/^ /, "")).join("\n").trim())
    .filter((c) => c)
    .join("\n\n");
  const out = [
    "# The TypeScript-helper boundary",
    "",
    `<!-- Generated from ${file.name} by scripts/gen-boundary-doc.ts (make docs/boundary.md): edit the .proto, not this file. -->`,
    "",
    header,
    "",
    "## Messages",
    "",
  ];
  file.messageType.forEach((m, i) => out.push(renderMessage(m, [FILE_MESSAGE, i], locs)));
  out.push("## Enums", "");
  file.enumType.forEach((e, i) => out.push(renderEnum(e, [FILE_ENUM, i], locs)));
  return out.join("\n").replace(/\n{3,}/g, "\n\n").trimEnd() + "\n";
}

/** The descriptor set protoc wrote for boundary/helper.proto, rendered. */
export function renderDescriptorSet(bytes: Uint8Array): string {
  const set = fromBinary(FileDescriptorSetSchema, bytes);
  const file = set.file.find((f) => f.name === "helper.proto");
  if (!file) throw new Error("no helper.proto in the descriptor set");
  return renderBoundaryDoc(file);
}

const [descPath] = process.argv.slice(2);
if (descPath && process.argv[1]?.endsWith("gen-boundary-doc.ts")) process.stdout.write(renderDescriptorSet(readFileSync(descPath)));
