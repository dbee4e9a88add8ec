// Placeholder while the page is being built.
import { h } from "../dom.js";

export default function view() {
  return h("section", { class: "card" }, h("h1", { dataset: { i18n: "nav.keys" } }));
}
