// The ControlNet panel of a Canvas mode whose op has a `controls` field: pick a detector (the unit's
// `preprocess` choices), preview its map through the op's studio.preview op, pick a ControlNet; the unit sent is
// the previewed map (preprocess "none") or the open image with the chosen detector.
import { h } from "../dom.js";
import { has, t } from "../i18n.js";
import { followJob, jobStatusText, submitJob } from "../jobs.js";
import { canvasRoles, opKey } from "../ops.js";

export function controlPanel({ ops, modeDef, roleField, assetId, overlay, cleanups, onStart, onError }) {
  const detector = h("select", { id: "control-detector" });
  // The detectors are the control unit's `preprocess` choices (without "none"), labelled by its schema's choices.
  let detectors = [];
  const unitSchema = () => {
    const op = ops()[modeDef().op || ""];
    const field = roleField("controls");
    if (!op || !field) return null;
    const items = op.params_schema.properties[field].items || {};
    return items.$ref ? op.params_schema.$defs[items.$ref.split("/").pop()] : items;
  };
  const fillDetectors = () => {
    const unit = unitSchema();
    if (!unit) return;
    detectors = (unit.properties?.preprocess?.enum || []).filter((d) => d !== "none");
    const chosen = detector.value;
    const label = (d) => {
      const key = `${opKey(modeDef().op, "c", [roleField("controls"), "preprocess"])}.${d}`;
      return has(key) ? t(key) : d;
    };
    detector.replaceChildren(...detectors.map((d) => h("option", { value: d }, label(d))));
    if (detectors.includes(chosen)) detector.value = chosen;
  };
  const previewBtn = h("button", { type: "button", class: "link", id: "control-preview", dataset: { i18n: "edit.control.preview" } });
  const mapStatus = h("p", { class: "muted", id: "control-status", "aria-live": "polite" });
  const mapImg = h("img", { id: "control-map", alt: "", hidden: true });
  const overlayBox = h("input", { type: "checkbox", id: "control-overlay" });
  const overlayLabel = h("label", { class: "check", hidden: true }, overlayBox, h("span", { dataset: { i18n: "edit.control.overlay" } }));
  const netSelect = h("select", { id: "control-net" });
  const noNet = h("p", { class: "muted note", id: "control-no-model", hidden: true, dataset: { i18n: "edit.control.noModel" } });
  const mapUse = h("p", { class: "muted", id: "control-uses", dataset: { i18n: "edit.control.usesPhoto" } });
  const element = h(
    "div",
    { class: "mode-panel", dataset: { panel: "controls" } },
    h("label", { dataset: { field: "mode" } }, h("span", { dataset: { i18n: "edit.control.detector" } }), h("div", { class: "inline" }, detector, previewBtn)),
    mapStatus,
    h("div", { class: "map-frame" }, mapImg),
    overlayLabel,
    h("label", { dataset: { field: "controls" } }, h("span", { dataset: { i18n: "edit.control.net" } }), netSelect),
    noNet,
    mapUse,
  );

  let map = null; // the previewed control map {id, url, detector}
  let stopPreview = null;
  cleanups.push(() => stopPreview && stopPreview());
  function setMap(next) {
    map = next;
    mapImg.hidden = !map;
    overlayLabel.hidden = !map;
    if (map) {
      mapImg.src = map.url;
      mapImg.dataset.assetId = map.id;
      overlay.src = map.url;
    } else {
      mapImg.removeAttribute("src");
      delete mapImg.dataset.assetId;
    }
    overlay.hidden = !(roleField("controls") && overlayBox.checked && map);
    mapUse.dataset.i18n = map ? "edit.control.usesMap" : "edit.control.usesPhoto";
    mapUse.textContent = t(mapUse.dataset.i18n);
  }
  detector.addEventListener("change", () => {
    if (map && map.detector !== detector.value) setMap(null);
    mapStatus.textContent = "";
  });
  overlayBox.addEventListener("change", () => (overlay.hidden = !(overlayBox.checked && map)));
  previewBtn.addEventListener("click", async () => {
    onStart();
    if (stopPreview) stopPreview();
    previewBtn.disabled = true;
    mapStatus.textContent = t("edit.control.previewing");
    const mode = detector.value;
    try {
      // The mode's preview op (studio.preview): its image field gets the open image, the detector goes to its
      // choice field that offers it.
      const name = ops()[modeDef().op]?.studio?.preview;
      const op = ops()[name];
      if (!op) throw new Error(t("edit.tools.none"));
      const props = op.params_schema.properties || {};
      const imageField = (canvasRoles(op).image || [])[0];
      const choiceField = Object.keys(props).find((k) => (props[k].enum || []).includes(mode));
      const job = await submitJob(name, { [imageField]: assetId, [choiceField]: mode });
      stopPreview = followJob(job, (j, done) => {
        if (!done) {
          mapStatus.textContent = `${t("edit.control.previewing")} ${jobStatusText(j, false)}`;
          return;
        }
        previewBtn.disabled = false;
        if (j.state === "succeeded" && j.outputs && j.outputs.length) {
          mapStatus.textContent = "";
          setMap({ id: j.outputs[0].asset_id, url: j.outputs[0].url, detector: mode });
        } else {
          mapStatus.textContent = jobStatusText(j, true);
        }
      });
    } catch (err) {
      previewBtn.disabled = false;
      mapStatus.textContent = "";
      onError(err);
    }
  });

  return {
    element,
    fill: fillDetectors,
    hasNet: () => Boolean(netSelect.value),
    setNets(nets) {
      netSelect.replaceChildren(...nets.map((x) => h("option", { value: x.name }, x.name)));
      noNet.hidden = nets.length > 0;
      netSelect.closest("label").hidden = !nets.length;
    },
    showOverlay: () => (overlay.hidden = !(roleField("controls") && overlayBox.checked && map)),
    unit: () =>
      map && map.detector === detector.value
        ? { model: netSelect.value, image: map.id, preprocess: "none" }
        : { model: netSelect.value, image: assetId, preprocess: detector.value },
  };
}
