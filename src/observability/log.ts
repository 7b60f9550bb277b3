/**
 * The site log's share of the events: incoming links coming and going (outgoing links are
 * logged by their dialer, with the failure it diagnosed). Link events are rare, so subscribing
 * for the whole life of the site process costs nothing noticeable; stream events are not
 * logged, which keeps them free.
 */
import { logger } from "../common/log.js";
import { CHANNELS, subscribe } from "./events.js";

const log = logger("router");

/** Logs link events until the returned function is called. */
export function startEventLog(): () => void {
  const unsubscribe = [
    subscribe(CHANNELS.linkUp, (m) => {
      if (m.link.direction === "incoming") log.info(`incoming link "${m.link.name || "?"}" from site ${m.link.remoteSiteName} is up`);
    }),
    subscribe(CHANNELS.linkDown, (m) => {
      if (m.link.direction === "incoming") log.info(`incoming link "${m.link.name || "?"}" from site ${m.link.remoteSiteName} is down: ${m.reason}`);
    }),
  ];
  return () => {
    for (const stop of unsubscribe) stop();
  };
}
