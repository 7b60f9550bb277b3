/**
 * The web console: a live topology (sites and links), the services, and a link's detail, from the
 * site's network view pushed on `/api/events` (Server-Sent Events). Preact for the page,
 * cytoscape for the graph; bundled by scripts/build-console.ts.
 */
import cytoscape, { type Core, type ElementDefinition } from "cytoscape";
import { render } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import {
  buildModel,
  edgeLabel,
  formatBytes,
  formatRate,
  formatRtt,
  formatSince,
  NONE,
  type ConsoleView,
  type LinkEdge,
  type Model,
} from "./model.js";

type Connection = "connecting" | "live" | "lost";

function useNetwork(): { model: Model | undefined; connection: Connection } {
  const [model, setModel] = useState<Model | undefined>(undefined);
  const [connection, setConnection] = useState<Connection>("connecting");
  useEffect(() => {
    let last: Model | undefined;
    const events = new EventSource("/api/events");
    events.onopen = () => setConnection("live");
    events.onerror = () => setConnection(events.readyState === EventSource.CLOSED ? "lost" : "connecting");
    events.onmessage = (event: MessageEvent<string>) => {
      try {
        last = buildModel(JSON.parse(event.data) as ConsoleView, Date.now(), last);
        setModel(last);
        setConnection("live");
      } catch {
        // a view this console does not understand: keep the last one
      }
    };
    return () => events.close();
  }, []);
  return { model, connection };
}

function Topology({ model, selected, onSelect }: { model: Model; selected: string | undefined; onSelect: (id: string) => void }) {
  const container = useRef<HTMLDivElement>(null);
  const cy = useRef<Core | undefined>(undefined);
  const select = useRef(onSelect);
  select.current = onSelect;

  useEffect(() => {
    if (!container.current) return;
    const graph = cytoscape({
      container: container.current,
      userZoomingEnabled: true,
      boxSelectionEnabled: false,
      style: [
        { selector: "node", style: { label: "data(label)", "background-color": "#2f6fb0", color: "#1b1b1b", "text-valign": "bottom", "text-margin-y": 6, "font-size": 13, width: 34, height: 34 } },
        { selector: "node.local", style: { "background-color": "#1d8a4e", "border-width": 3, "border-color": "#0e4d2a" } },
        { selector: "node.unreachable", style: { "background-color": "#9a9a9a" } },
        { selector: "edge", style: { label: "data(label)", width: 3, "line-color": "#2f6fb0", "font-size": 11, "text-background-color": "#ffffff", "text-background-opacity": 0.85, "text-background-padding": "2px", "curve-style": "bezier" } },
        { selector: "edge.down", style: { "line-color": "#c62828", "line-style": "dashed", color: "#c62828" } },
        { selector: "edge.selected", style: { width: 6 } },
      ],
      layout: { name: "grid" },
    });
    graph.on("tap", "edge", (event) => select.current(event.target.id() as string));
    cy.current = graph;
    return () => graph.destroy();
  }, []);

  useEffect(() => {
    const graph = cy.current;
    if (!graph) return;
    const wanted: ElementDefinition[] = [
      ...model.sites.map((s) => ({ group: "nodes" as const, data: { id: s.id, label: s.local ? `${s.name} (this site)` : s.name }, classes: [s.local ? "local" : "", s.reachable ? "" : "unreachable"].join(" ").trim() })),
      ...model.links.map((l) => ({ group: "edges" as const, data: { id: l.id, source: l.source, target: l.target, label: edgeLabel(l) }, classes: [l.state, l.id === selected ? "selected" : ""].join(" ").trim() })),
    ];
    let added = false;
    graph.batch(() => {
      const ids = new Set(wanted.map((e) => e.data.id));
      graph.elements().forEach((e) => {
        if (!ids.has(e.id())) e.remove();
      });
      for (const element of wanted) {
        const existing = graph.getElementById(element.data.id as string);
        if (existing.nonempty()) {
          existing.data(element.data);
          existing.classes(element.classes as string);
        } else {
          graph.add(element);
          added = true;
        }
      }
    });
    if (added) graph.layout({ name: model.sites.length > 2 ? "circle" : "grid", padding: 40, animate: false }).run();
  }, [model, selected]);

  return <div ref={container} class="graph" data-testid="topology-graph" role="img" aria-label={`Topology: ${model.sites.length} sites, ${model.links.length} links`} />;
}

function SitesTable({ model }: { model: Model }) {
  return (
    <table data-testid="sites-table">
      <caption>Sites</caption>
      <thead>
        <tr><th scope="col">Site</th><th scope="col">Namespace</th><th scope="col">Reachable</th><th scope="col">Path cost</th></tr>
      </thead>
      <tbody>
        {model.sites.map((s) => (
          <tr key={s.id} data-testid={`site-${s.name}`}>
            <th scope="row">{s.name}{s.local ? " (this site)" : ""}</th>
            <td>{s.namespace ?? NONE}</td>
            <td data-testid={`site-reachable-${s.name}`}>{s.reachable ? "yes" : "no"}</td>
            <td>{s.local ? 0 : (s.cost ?? NONE)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function siteName(model: Model, id: string): string {
  return model.sites.find((s) => s.id === id)?.name ?? id;
}

function linkKey(model: Model, link: LinkEdge): string {
  return `${siteName(model, link.source)}--${siteName(model, link.target)}`;
}

function LinksTable({ model, selected, onSelect }: { model: Model; selected: string | undefined; onSelect: (id: string) => void }) {
  return (
    <table data-testid="links-table">
      <caption>Links</caption>
      <thead>
        <tr><th scope="col">From</th><th scope="col">To</th><th scope="col">State</th><th scope="col">Cost</th><th scope="col">RTT</th><th scope="col">Throughput</th><th scope="col">Detail</th></tr>
      </thead>
      <tbody>
        {model.links.map((l) => {
          const key = linkKey(model, l);
          return (
            <tr key={l.id} data-testid={`link-${key}`} data-state={l.state} class={l.id === selected ? "selected" : ""}>
              <td>{siteName(model, l.source)}</td>
              <td>{siteName(model, l.target)}</td>
              <td data-testid={`link-state-${key}`} class={`state ${l.state}`}>{l.detail}</td>
              <td>{l.cost ?? NONE}</td>
              <td data-testid={`link-rtt-${key}`}>{formatRtt(l.rttMs)}</td>
              <td data-testid={`link-rate-${key}`}>{formatRate(l.rate)}</td>
              <td><button type="button" onClick={() => onSelect(l.id)} data-testid={`link-select-${key}`} aria-pressed={l.id === selected}>Details</button></td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

function LinkDetail({ model, id, onClose }: { model: Model; id: string; onClose: () => void }) {
  const link = model.links.find((l) => l.id === id);
  if (!link) return null;
  const rows: Array<[string, string, string]> = [
    ["Link", link.name ?? `${NONE} (between two other sites)`, "name"],
    ["Between", `${siteName(model, link.source)} → ${siteName(model, link.target)} (${link.direction === "remote" ? "seen in the network" : `${link.direction} at this site`})`, "ends"],
    ["State", link.detail, "state"],
    ["Cost", link.cost === undefined ? NONE : String(link.cost), "cost"],
    ["RTT", formatRtt(link.rttMs), "rtt"],
    ["Since", formatSince(link.since, model.time), "since"],
    ["Bytes in / out", `${formatBytes(link.bytesIn)} / ${formatBytes(link.bytesOut)}`, "bytes"],
    ["Throughput", formatRate(link.rate), "rate"],
    ["Last failure", link.message || NONE, "message"],
  ];
  return (
    <section class="detail" aria-labelledby="detail-heading" data-testid="link-detail">
      <h2 id="detail-heading">Link {linkKey(model, link)}</h2>
      <dl>
        {rows.map(([label, value, key]) => (
          <div key={key}>
            <dt>{label}</dt>
            <dd data-testid={`link-detail-${key}`}>{value}</dd>
          </div>
        ))}
      </dl>
      <button type="button" onClick={onClose}>Close</button>
    </section>
  );
}

function Services({ model }: { model: Model }) {
  if (model.services.length === 0) return <p data-testid="no-services">No services: create listeners and connectors to offer one.</p>;
  return (
    <table data-testid="services-table">
      <caption>Services (routing keys)</caption>
      <thead>
        <tr><th scope="col">Routing key</th><th scope="col">Listeners</th><th scope="col">Connectors</th></tr>
      </thead>
      <tbody>
        {model.services.map((s) => (
          <tr key={s.routingKey} data-testid={`service-${s.routingKey}`}>
            <th scope="row">{s.routingKey}</th>
            <td>
              <ul>
                {s.listeners.map((l) => (
                  <li key={`${l.site}/${l.name ?? ""}`}>
                    {l.site}
                    {l.name !== undefined ? (
                      <>
                        {` ${l.name} :${l.port} ${l.state ?? ""} · `}
                        <span data-testid={`listener-connections-${l.name}`}>{l.connections ?? 0}</span> connections · {formatBytes(l.bytesIn)} in / {formatBytes(l.bytesOut)} out
                      </>
                    ) : null}
                  </li>
                ))}
                {s.listeners.length === 0 ? <li>{NONE}</li> : null}
              </ul>
            </td>
            <td>
              <ul>
                {s.connectors.map((c) => (
                  <li key={`${c.site}/${c.name ?? ""}`}>
                    {c.site}
                    {c.name !== undefined ? (
                      <>
                        {` ${c.name} → ${c.host}:${c.port} · `}
                        <span data-testid={`connector-connections-${c.name}`}>{c.connections ?? 0}</span> connections · {formatBytes(c.bytesIn)} in / {formatBytes(c.bytesOut)} out
                      </>
                    ) : null}
                  </li>
                ))}
                {s.connectors.length === 0 ? <li>{NONE}</li> : null}
              </ul>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Traffic({ model }: { model: Model }) {
  return (
    <table data-testid="traffic-table">
      <caption>Traffic between sites</caption>
      <thead>
        <tr><th scope="col">Routing key</th><th scope="col">Client site</th><th scope="col">Server site</th><th scope="col">Active</th><th scope="col">Opened</th><th scope="col">Bytes</th><th scope="col">Throughput</th></tr>
      </thead>
      <tbody>
        {model.traffic.length === 0 ? (
          <tr><td colSpan={7}>{NONE} (the sites publish no traffic summaries yet)</td></tr>
        ) : (
          model.traffic.map((t) => (
            <tr key={`${t.routingKey}/${t.from}/${t.to}`} data-testid={`traffic-${t.routingKey}-${t.from}-${t.to}`}>
              <th scope="row">{t.routingKey}</th>
              <td>{t.from}</td>
              <td>{t.to}</td>
              <td>{t.active}</td>
              <td>{t.opened}</td>
              <td>{formatBytes(t.bytes)}</td>
              <td>{formatRate(t.rate)}</td>
            </tr>
          ))
        )}
      </tbody>
    </table>
  );
}

function App() {
  const { model, connection } = useNetwork();
  const [selected, setSelected] = useState<string | undefined>(undefined);
  return (
    <>
      <header>
        <h1>Skupper console{model ? `: site ${model.siteName}` : ""}</h1>
        <p class={`connection ${connection}`} data-testid="connection" role="status">
          {connection === "live" ? "Live" : connection === "connecting" ? "Connecting…" : "Connection lost"}
          {model ? ` · updated ${new Date(model.time).toLocaleTimeString()}` : ""}
        </p>
      </header>
      {!model ? (
        <p>Waiting for the network view…</p>
      ) : (
        <main>
          <section aria-labelledby="topology-heading">
            <h2 id="topology-heading">Topology</h2>
            <p data-testid="summary">{model.sites.length} sites · {model.links.filter((l) => l.state === "up").length} of {model.links.length} links up</p>
            <div class="topology">
              <Topology model={model} selected={selected} onSelect={setSelected} />
              {selected ? <LinkDetail model={model} id={selected} onClose={() => setSelected(undefined)} /> : null}
            </div>
            <SitesTable model={model} />
            <LinksTable model={model} selected={selected} onSelect={setSelected} />
          </section>
          <section aria-labelledby="services-heading">
            <h2 id="services-heading">Services</h2>
            <Services model={model} />
            <Traffic model={model} />
          </section>
        </main>
      )}
    </>
  );
}

render(<App />, document.getElementById("app") as HTMLElement);
