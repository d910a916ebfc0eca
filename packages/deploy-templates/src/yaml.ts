/**
 * Just enough YAML for server config files: maps, lists and scalars, every
 * string double-quoted (JSON strings are valid YAML), so no value is ever
 * read back as another type.
 */
export type YamlValue = string | number | boolean | null | readonly YamlValue[] | { readonly [key: string]: YamlValue };

const KEY = /^[A-Za-z0-9_.-]+$/;

function scalar(value: string | number | boolean | null): string {
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}

function key(name: string): string {
  return KEY.test(name) ? name : JSON.stringify(name);
}

function isBlock(value: YamlValue): boolean {
  return typeof value === "object" && value !== null && (Array.isArray(value) ? value.length > 0 : Object.keys(value).length > 0);
}

function render(value: YamlValue, indent: string): string[] {
  if (Array.isArray(value)) {
    if (value.length === 0) return ["[]"];
    const lines: string[] = [];
    for (const item of value as readonly YamlValue[]) {
      const inner = render(item, `${indent}  `);
      if (isBlock(item)) lines.push(`${indent}- ${inner[0]!.trimStart()}`, ...inner.slice(1));
      else lines.push(`${indent}- ${inner[0]!}`);
    }
    return lines;
  }
  if (typeof value === "object" && value !== null) {
    const entries = Object.entries(value as Record<string, YamlValue>);
    if (entries.length === 0) return ["{}"];
    const lines: string[] = [];
    for (const [k, v] of entries) {
      if (isBlock(v)) lines.push(`${indent}${key(k)}:`, ...render(v, `${indent}  `));
      else lines.push(`${indent}${key(k)}: ${render(v, "")[0]!}`);
    }
    return lines;
  }
  return [scalar(value)];
}

/** Renders a YAML document (block style, strings double-quoted, one trailing newline). */
export function toYaml(value: YamlValue): string {
  return `${render(value, "").join("\n")}\n`;
}

/** `text` as `# ` comment lines (empty lines stay `#`), or nothing for `undefined`. */
export function commentLines(text: string | undefined): string {
  if (text === undefined) return "";
  return text
    .split("\n")
    .map((line) => (line === "" ? "#" : `# ${line}`))
    .join("\n")
    .concat("\n");
}
