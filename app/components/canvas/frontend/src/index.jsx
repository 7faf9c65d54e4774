// Streamlit Components v2 entry point: `export default function (component)` is called on every
// script run with the newest data; one React root per mount keeps the canvas's positions and
// zoom between runs.
import { createRoot } from "react-dom/client";
import "@xyflow/react/dist/style.css";
import "./styles.css";
import Canvas from "./Canvas.jsx";

const roots = new WeakMap();
let sequence = 0;

export default function render(component) {
  const { parentElement, data, setTriggerValue } = component;
  let entry = roots.get(parentElement);
  if (!entry) {
    const host = document.createElement("div");
    host.className = "studio-canvas-host";
    parentElement.appendChild(host);
    entry = { root: createRoot(host), host };
    roots.set(parentElement, entry);
  }
  // each action carries a number of its own, so two identical actions are two events
  const send = (action) => {
    sequence += 1;
    setTriggerValue("action", { ...action, seq: sequence, revision: data?.revision ?? null });
  };
  entry.root.render(<Canvas graph={data || { nodes: [], edges: [], palette: [] }} send={send} />);
  return () => {
    // Streamlit may call this before the next run's render: unmount only when the canvas is gone
    setTimeout(() => {
      if (!entry.host.isConnected) {
        entry.root.unmount();
        roots.delete(parentElement);
      }
    }, 0);
  };
}
