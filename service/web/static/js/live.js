// Live updates: the events of some subscriptions, and one refresh per burst of them (a push
// brings a refusal event and a status event: the page reloads once, not twice).
import { subscribe } from "./api.js";
import { useEffect, useRef } from "./ui.js";

const QUIET_MS = 400;

// `subscriptions`: [[query, onEvent or null], ...]; `refresh` runs once the events stop for a moment.
export function useLive(subscriptions, refresh) {
  const handlers = useRef({ subscriptions, refresh });
  handlers.current = { subscriptions, refresh };
  const queries = subscriptions.map(([query]) => query).join("\n");
  useEffect(() => {
    let timer = null;
    const stops = handlers.current.subscriptions.map(([query], index) =>
      subscribe(query, {}, (data) => {
        const onEvent = handlers.current.subscriptions[index][1];
        if (onEvent) onEvent(data);
        clearTimeout(timer);
        timer = setTimeout(() => handlers.current.refresh(), QUIET_MS);
      }),
    );
    return () => { clearTimeout(timer); stops.forEach((stop) => stop()); };
  }, [queries]);
}
