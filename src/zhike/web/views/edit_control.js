// The ControlNet panel of a Canvas mode whose op has a `controls` field: pick a detector (the choices of the unit's
// `detector`-role field), preview its map through the op's studio.preview op, pick a ControlNet (the unit's
// `model` widget field); the unit sent is the previewed map (detector "none": the image is the map) or the open
// image (the unit's `image`-role field) with the chosen detector. No field name is assumed.
import { h } from "../dom.js";
import { has, t } from "../i18n.js";
import { followJob, jobStatusText, submitJob } from "../jobs.js";
import { canvasRoles, deref, meta, opKey } from "../ops.js";

const AS_IS = "none"; // the detector value that takes the image as the map

export function controlPanel({ ops, modeDef, roleField, assetId, overlay, cleanups, onStart, onError }) {
  const detector = h("select", { id: "control-detector" });
  // The detectors are the choices of the unit's detector field (without "none"), labelled by its schema's choices.
  let detectors = [];
  const unitSchema = () => {
    const op = ops()[modeDef().op || ""];
    const field = roleField("controls");
    if (!op || !field) return null;
    return deref(op.params_schema.properties[field].items, op.params_schema);
  };
  // The unit's field that plays `role` (x-zhike canvas), or for "model" the one with the model widget.
  const unitField = (role) => {
    const props = unitSchema()?.properties || {};
    return Object.keys(props).find((k) => (role === "model" ? meta(props[k]).widget === "model" : meta(props[k]).canvas === role));
  };
  const fillDetectors = () => {
    const unit = unitSchema();
    const field = unitField("detector");
    if (!unit || !field) return;
    detectors = (unit.properties[field].enum || []).filter((d) => d !== AS_IS);
    const chosen = detector.value;
    const label = (d) => {
      const key = `${opKey(modeDef().op, "c", [roleField("controls"), field])}.${d}`;
      return has(key) ? t(key) : d;
    };
    detector.replaceChildren(...detectors.map((d) => h("option", { value: d }, label(d))));
    netLabel.dataset.field = roleField("controls");
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
  // data-field: where an API error about the preview's choice field or the control units is shown
  const detectorLabel = h("label", {}, h("span", { dataset: { i18n: "edit.control.detector" } }), h("div", { class: "inline" }, detector, previewBtn));
  const netLabel = h("label", {}, h("span", { dataset: { i18n: "edit.control.net" } }), netSelect);
  const element = h(
    "div",
    { class: "mode-panel", dataset: { panel: "controls" } },
    detectorLabel,
    mapStatus,
    h("div", { class: "map-frame" }, mapImg),
    overlayLabel,
    netLabel,
    noNet,
    mapUse,
  );

  let map = null; // the previewed control map {id, url, detector}
  const showOverlay = () => (overlay.hidden = !(roleField("controls") && overlayBox.checked && map));
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
    showOverlay();
    mapUse.dataset.i18n = map ? "edit.control.usesMap" : "edit.control.usesPhoto";
    mapUse.textContent = t(mapUse.dataset.i18n);
  }
  detector.addEventListener("change", () => {
    if (map && map.detector !== detector.value) setMap(null);
    mapStatus.textContent = "";
  });
  overlayBox.addEventListener("change", () => showOverlay());
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
      detectorLabel.dataset.field = choiceField;
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
    showOverlay,
    unit: () => {
      const asMap = map && map.detector === detector.value;
      return {
        [unitField("model")]: netSelect.value,
        [unitField("image")]: asMap ? map.id : assetId,
        [unitField("detector")]: asMap ? AS_IS : detector.value,
      };
    },
  };
}
