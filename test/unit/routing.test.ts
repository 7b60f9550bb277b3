/**
 * Link-state routing (src/router/routing.ts): adverts, the database's freshness rules, and
 * least-cost paths over links that both ends advertise.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { LinkStateDatabase, parseAdvert, type LinkStateAdvert, type RouteTable } from "../../src/router/routing.js";

function advert(id: string, links: Record<string, number>, extra: Partial<LinkStateAdvert> = {}): LinkStateAdvert {
  return { id, name: id.toLowerCase(), instance: 1, seq: 1, links, connectors: {}, listeners: {}, ...extra };
}

/** A database as seen from `self`, holding adverts for every router of an undirected graph. */
function network(self: string, edges: Array<[string, string, number]>, nodes: string[] = []): LinkStateDatabase {
  const links = new Map<string, Record<string, number>>();
  for (const id of nodes) links.set(id, {});
  for (const [a, b, cost] of edges) {
    links.set(a, { ...links.get(a), [b]: cost });
    links.set(b, { ...links.get(b), [a]: cost });
  }
  const db = new LinkStateDatabase(advert(self, links.get(self) ?? {}));
  for (const [id, l] of links) if (id !== self) assert.equal(db.accept(advert(id, l)), true);
  return db;
}

function routesOf(table: RouteTable): Record<string, string> {
  return Object.fromEntries([...table.routes].map(([id, r]) => [id, `${r.via}/${r.cost}`]).sort());
}

describe("least-cost paths", () => {
  test("line A-B-C: C is reached through B at the summed cost", () => {
    const table = network("A", [["A", "B", 1], ["B", "C", 1]]).compute();
    assert.deepEqual(routesOf(table), { B: "B/1", C: "B/2" });
    assert.deepEqual([...table.reachable].sort(), ["A", "B", "C"]);
    assert.equal(table.routes.has("A"), false, "no route to self");
  });

  test("line from the middle: each end is a direct neighbour", () => {
    assert.deepEqual(routesOf(network("B", [["A", "B", 1], ["B", "C", 4]]).compute()), { A: "A/1", C: "C/4" });
  });

  test("triangle: an expensive direct link loses to a cheaper two-hop path", () => {
    const table = network("A", [["A", "B", 1], ["B", "C", 1], ["A", "C", 5]]).compute();
    assert.deepEqual(routesOf(table), { B: "B/1", C: "B/2" });
  });

  test("triangle: a cheaper direct link wins", () => {
    const table = network("A", [["A", "B", 1], ["B", "C", 5], ["A", "C", 2]]).compute();
    assert.deepEqual(routesOf(table), { B: "B/1", C: "C/2" });
  });

  test("a link's cost is the larger of the two advertised costs, and at least 1", () => {
    const db = new LinkStateDatabase(advert("A", { B: 1 }));
    db.accept(advert("B", { A: 7 }));
    assert.deepEqual(routesOf(db.compute()), { B: "B/7" });
    const zero = new LinkStateDatabase(advert("A", { B: 0 }));
    zero.accept(advert("B", { A: 0 }));
    assert.deepEqual(routesOf(zero.compute()), { B: "B/1" });
  });

  test("equal-cost paths are broken deterministically by the lower first hop", () => {
    // A-B-D and A-C-D both cost 2; whichever order adverts arrive in, D goes via B.
    const edges: Array<[string, string, number]> = [["A", "C", 1], ["C", "D", 1], ["A", "B", 1], ["B", "D", 1]];
    assert.deepEqual(routesOf(network("A", edges).compute()), { B: "B/1", C: "C/1", D: "B/2" });
    assert.deepEqual(routesOf(network("A", [...edges].reverse()).compute()), { B: "B/1", C: "C/1", D: "B/2" });
  });

  test("removing a link reroutes, and removing the last path makes a router unreachable", () => {
    const db = network("A", [["A", "B", 1], ["B", "C", 1], ["A", "C", 5]]);
    assert.equal(db.compute().routes.get("C")?.via, "B");
    // B drops its link to C (new advert, higher sequence number).
    assert.equal(db.accept(advert("B", { A: 1 }, { seq: 2 })), true);
    assert.deepEqual(routesOf(db.compute()), { B: "B/1", C: "C/5" });
    // A drops its own link to C: C is now unreachable.
    const updated = db.updateSelf({ links: { B: 1 }, connectors: {}, listeners: {} });
    assert.equal(updated?.seq, 2);
    const table = db.compute();
    assert.deepEqual(routesOf(table), { B: "B/1" });
    assert.equal(table.reachable.has("C"), false);
  });

  test("a link advertised by one end only is not used", () => {
    const db = new LinkStateDatabase(advert("A", { B: 1 }));
    db.accept(advert("B", {}));
    const table = db.compute();
    assert.equal(table.routes.size, 0);
    assert.deepEqual([...table.reachable], ["A"]);
  });

  test("disconnected islands and unknown neighbours are unreachable", () => {
    const db = network("A", [["A", "B", 1], ["C", "D", 1]], ["E"]);
    db.accept(advert("F", { G: 1 })); // G never advertised
    const table = db.compute();
    assert.deepEqual(routesOf(table), { B: "B/1" });
    assert.deepEqual([...table.reachable].sort(), ["A", "B"]);
  });

  test("a longer chain accumulates costs through the first hop", () => {
    const table = network("A", [["A", "B", 2], ["B", "C", 3], ["C", "D", 4], ["A", "E", 1], ["E", "D", 20]]).compute();
    assert.deepEqual(routesOf(table), { B: "B/2", C: "B/5", D: "B/9", E: "E/1" });
  });
});

describe("the database", () => {
  test("accept keeps only newer adverts: higher seq, or a newer instance", () => {
    const db = new LinkStateDatabase(advert("A", {}));
    assert.equal(db.accept(advert("B", {}, { seq: 5 })), true);
    assert.equal(db.accept(advert("B", { X: 1 }, { seq: 5 })), false, "same seq");
    assert.equal(db.accept(advert("B", { X: 1 }, { seq: 4 })), false, "older seq");
    assert.deepEqual(db.get("B")?.links, {});
    assert.equal(db.accept(advert("B", { Y: 1 }, { seq: 6 })), true);
    assert.equal(db.accept(advert("B", { Z: 1 }, { instance: 2, seq: 1 })), true, "a restarted router starts over at seq 1");
    assert.deepEqual(db.get("B")?.links, { Z: 1 });
    assert.equal(db.accept(advert("B", { W: 1 }, { instance: 1, seq: 99 })), false, "an old instance never wins");
  });

  test("our own advert coming back is ignored", () => {
    const db = new LinkStateDatabase(advert("A", { B: 1 }));
    assert.equal(db.accept(advert("A", {}, { seq: 100, instance: 100 })), false);
    assert.deepEqual(db.self.links, { B: 1 });
  });

  test("updateSelf bumps seq only when content changes", () => {
    const db = new LinkStateDatabase(advert("A", { B: 1 }, { connectors: { k: 1 } }));
    assert.equal(db.updateSelf({ links: { B: 1 }, connectors: { k: 1 }, listeners: {} }), undefined);
    assert.equal(db.self.seq, 1);
    const next = db.updateSelf({ links: { B: 1 }, connectors: { k: 2 }, listeners: {} });
    assert.equal(next?.seq, 2);
    assert.equal(db.get("A"), next);
    const renamed = db.updateSelf({ links: { B: 1 }, connectors: { k: 2 }, listeners: {}, id: "Z", instance: 9, seq: 50 });
    assert.equal(renamed, undefined, "id, instance and seq cannot be overridden, so nothing changed");
    assert.equal(db.self.id, "A");
  });

  test("purge forgets routers unreachable for longer than the limit", () => {
    const db = new LinkStateDatabase(advert("A", { B: 1 }));
    db.accept(advert("B", { A: 1 }));
    db.accept(advert("C", {}));
    const reachable = db.compute().reachable;
    db.purge(reachable, 1000, 10_000);
    assert.ok(db.get("C"), "just became unreachable: kept");
    db.purge(reachable, 1000, 10_500);
    assert.ok(db.get("C"), "within the limit: kept");
    db.purge(reachable, 1000, 11_001);
    assert.equal(db.get("C"), undefined);
    assert.ok(db.get("B"));
    assert.ok(db.get("A"));
  });

  test("purge restarts the clock when a router becomes reachable again", () => {
    const db = new LinkStateDatabase(advert("A", {}));
    db.accept(advert("C", {}));
    db.purge(new Set(["A"]), 1000, 0);
    db.purge(new Set(["A", "C"]), 1000, 900);
    db.purge(new Set(["A"]), 1000, 1500);
    db.purge(new Set(["A"]), 1000, 2400);
    assert.ok(db.get("C"));
    db.purge(new Set(["A"]), 1000, 2600);
    assert.equal(db.get("C"), undefined);
  });
});

describe("parseAdvert", () => {
  const good = { id: "site-1", name: "west", instance: 1700000000000, seq: 3, links: { "site-2": 1 }, connectors: { backend: 1 }, listeners: {}, rtt: { "site-2": 0.4 }, namespace: "west", version: "1.0" };

  test("accepts a well-formed advert and keeps only known fields", () => {
    assert.deepEqual(parseAdvert({ ...good, extra: "dropped" }), good);
  });

  test("rtt, namespace and version are optional", () => {
    const { rtt: _rtt, namespace: _namespace, version: _version, ...required } = good;
    const parsed = parseAdvert(JSON.parse(JSON.stringify(required)));
    assert.deepEqual(parsed, { ...required, rtt: {} });
    assert.equal("namespace" in parsed, false);
    assert.equal("version" in parsed, false);
  });

  const bad: Array<[string, unknown, RegExp]> = [
    ["null", null, /advert is not an object/],
    ["a string", "advert", /advert is not an object/],
    ["missing id", { ...good, id: undefined }, /advert field "id" is not valid/],
    ["empty name", { ...good, name: "" }, /advert field "name" is not valid/],
    ["an over-long id", { ...good, id: "x".repeat(257) }, /advert field "id" is not valid/],
    ["negative seq", { ...good, seq: -1 }, /advert field "seq" is not valid/],
    ["string instance", { ...good, instance: "1" }, /advert field "instance" is not valid/],
    ["infinite seq", { ...good, seq: Infinity }, /advert field "seq" is not valid/],
    ["links as a list", { ...good, links: [1, 2] }, /advert field "links" is not valid/],
    ["missing connectors", { ...good, connectors: undefined }, /advert field "connectors" is not valid/],
    ["a non-numeric cost", { ...good, links: { "site-2": "1" } }, /advert field "links" is not valid/],
    ["a negative cost", { ...good, listeners: { k: -1 } }, /advert field "listeners" is not valid/],
    ["NaN rtt", { ...good, rtt: { "site-2": NaN } }, /advert field "rtt" is not valid/],
    ["a non-string namespace", { ...good, namespace: 5 }, /advert field "namespace" is not valid/],
    ["an over-long key", { ...good, connectors: { ["k".repeat(1025)]: 1 } }, /advert field "connectors" is not valid/],
    ["too many entries", { ...good, connectors: Object.fromEntries(Array.from({ length: 10_001 }, (_, i) => [`k${i}`, 1])) }, /advert field "connectors" has too many entries/],
  ];
  for (const [label, value, message] of bad) {
    test(`rejects ${label}`, () => assert.throws(() => parseAdvert(value), message));
  }
});
