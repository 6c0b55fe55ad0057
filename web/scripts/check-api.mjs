// Fails when src/api/schema.d.ts is not what openapi-typescript generates from ../docs/openapi.json
// (the committed copy of the served OpenAPI): the client must never be typed by hand or drift.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const dir = mkdtempSync(join(tmpdir(), "schema-"));
const fresh = join(dir, "schema.d.ts");
try {
  execFileSync(
    process.execPath,
    ["node_modules/openapi-typescript/bin/cli.js", "../docs/openapi.json", "-o", fresh],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  if (readFileSync(fresh, "utf8") !== readFileSync("src/api/schema.d.ts", "utf8")) {
    console.error("web/src/api/schema.d.ts is stale: run `npm run generate-api` in web/ and commit it");
    process.exit(1);
  }
  console.log("web/src/api/schema.d.ts matches docs/openapi.json");
} finally {
  rmSync(dir, { recursive: true, force: true });
}
