// The seed article's JavaScript stream handler, for the cold-start comparison: it walks the
// batch, reads each INSERT's new image and prices the order, but makes no AWS SDK calls.
// It talks to the Lambda Runtime API itself, as a custom runtime would.
import http from "node:http";

const MENU = { margherita: 850, marinara: 700, "quattro-formaggi": 1000, tiramisu: 550, espresso: 200 };

function price(order) {
  if (typeof order.restaurant !== "string" || !Array.isArray(order.items)) throw new Error("not an order");
  if (order.items.length === 0) throw new Error("the order has no items");
  let total = 0;
  for (const line of order.items) {
    if (!(line.dish in MENU)) throw new Error(`unknown dish ${line.dish}`);
    if (!Number.isInteger(line.quantity) || line.quantity < 1 || line.quantity > 20) throw new Error("bad quantity");
    total += MENU[line.dish] * line.quantity;
  }
  return { total_cents: total, items: order.items.length };
}

export function handler(event) {
  const results = [];
  for (const record of event.Records) {
    if (record.eventName !== "INSERT") continue;
    try {
      results.push(price(JSON.parse(record.dynamodb.NewImage.request.S)));
    } catch (error) {
      results.push({ error: error.message });
    }
  }
  return { batchItemFailures: [] };
}

const agent = new http.Agent({ keepAlive: true });
const base = `http://${process.env.AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime`;

function request(method, url, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on("error", reject);
    if (body) req.end(body); else req.end();
  });
}

for (;;) {
  const next = await request("GET", `${base}/invocation/next`);
  const id = next.headers["lambda-runtime-aws-request-id"];
  const response = handler(JSON.parse(next.body));
  await request("POST", `${base}/invocation/${id}/response`, JSON.stringify(response));
}
