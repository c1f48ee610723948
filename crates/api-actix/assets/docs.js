// Renders /openapi.json: one section per operation, with its credential, parameters, body and
// responses (schemas resolved from components). No dependencies, nothing from another origin.
"use strict";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children) {
    if (c === null || c === undefined) continue;
    node.append(typeof c === "string" ? document.createTextNode(c) : c);
  }
  return node;
}

function resolve(doc, schema) {
  if (schema && schema.$ref) {
    const name = schema.$ref.split("/").pop();
    return resolve(doc, doc.components.schemas[name]);
  }
  return schema || {};
}

// A JSON-like sketch of a schema, a few levels deep.
function sketch(doc, schema, depth) {
  const s = resolve(doc, schema);
  if (depth > 4) return "…";
  const types = [].concat(s.type || (s.properties ? "object" : "any"));
  if (types.includes("object") && s.properties) {
    const lines = Object.entries(s.properties).map(([k, v]) => {
      const required = (s.required || []).includes(k) ? "" : "?";
      return "  ".repeat(depth + 1) + JSON.stringify(k) + required + ": " + sketch(doc, v, depth + 1);
    });
    return "{\n" + lines.join(",\n") + "\n" + "  ".repeat(depth) + "}";
  }
  if (types.includes("array")) return "[" + sketch(doc, s.items, depth) + ", …]";
  if (s.oneOf || s.anyOf) return (s.oneOf || s.anyOf).map((x) => sketch(doc, x, depth)).join(" | ");
  return types.join(" | ") + (s.format ? " (" + s.format + ")" : "");
}

function operation(doc, path, method, op) {
  const id = method + "-" + path.replace(/[^a-z0-9]+/gi, "-");
  const security = (op.security || []).map((r) => Object.keys(r).join(", ")).join(" or ");
  const section = el("section", { class: "op", id },
    el("h3", {}, el("span", { class: "method " + method }, method), " ", path,
      security ? el("span", { class: "lock" }, "credential: " + security) : null),
    op.description ? el("p", {}, op.description) : null);
  if (op.parameters && op.parameters.length) {
    const rows = op.parameters.map((p) => el("tr", {},
      el("td", {}, el("code", {}, p.name)), el("td", {}, p.in),
      el("td", {}, p.required ? "required" : "optional"), el("td", {}, p.description || "")));
    section.append(el("h4", {}, "Parameters"), el("table", {}, ...rows));
  }
  const body = op.requestBody && op.requestBody.content && op.requestBody.content["application/json"];
  if (body) section.append(el("h4", {}, "Request body (application/json)"), el("pre", {}, sketch(doc, body.schema, 0)));
  const rows = Object.entries(op.responses || {}).map(([status, r]) => {
    const json = r.content && r.content["application/json"];
    return el("tr", {}, el("td", {}, el("code", {}, status)), el("td", {}, r.description || "",
      json && json.schema ? el("pre", {}, sketch(doc, json.schema, 0)) : null));
  });
  section.append(el("h4", {}, "Responses"), el("table", {}, ...rows));
  return { id, section };
}

async function main() {
  const content = document.getElementById("content");
  let doc;
  try {
    const res = await fetch("/openapi.json");
    doc = await res.json();
  } catch (e) {
    content.textContent = "Could not load /openapi.json: " + e;
    return;
  }
  document.getElementById("title").textContent = doc.info.title + " " + doc.info.version;
  content.textContent = "";
  const toc = el("ul", {});
  const tags = (doc.tags || []).map((t) => t.name);
  const byTag = new Map(tags.map((t) => [t, []]));
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of ["get", "post", "put", "patch", "delete"]) {
      if (!item[method]) continue;
      const tag = (item[method].tags || ["other"])[0];
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push([path, method, item[method]]);
    }
  }
  for (const [tag, ops] of byTag) {
    const description = (doc.tags || []).find((t) => t.name === tag);
    content.append(el("h2", {}, tag), description && description.description ? el("p", { class: "muted" }, description.description) : null);
    for (const [path, method, op] of ops) {
      const { id, section } = operation(doc, path, method, op);
      content.append(section);
      toc.append(el("li", {}, el("a", { href: "#" + id }, method.toUpperCase() + " " + path)));
    }
  }
  document.getElementById("toc").append(toc);
}

main();
