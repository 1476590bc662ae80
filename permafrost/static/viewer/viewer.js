/* permafrost serve: the map viewer of one run folder (Leaflet, served by the same machine).
 *
 * Layers come from /api/layers; raster tiles from /tiles/ID/Z/X/Y.png; vectors from
 * /vectors/ID.geojson; a click asks /api/point for the value of every raster layer there.
 * URL parameters: ?layer=ID&compare=ID&vectors=ID,ID&at=LAT,LON (open with these layers,
 * and the values at that point, as after a click there).
 * The page's API: window.pfViewer = {map, ready, showValuesAt(lat, lon), setLayer(id),
 * setCompare(id)}.
 */
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const status = $("pf-status");
  const params = new URLSearchParams(window.location.search);
  const map = L.map("pf-map", {zoomControl: true, attributionControl: false});
  const comparePane = map.createPane("pf-compare");
  // above the tile pane (200: hillshade, top layer), below the vectors' overlay pane (400)
  comparePane.style.zIndex = 250;
  let info = null, top = null, under = null, marker = null, bounds = null;
  let loaded = 0, failed = 0;

  function count(layer) {
    layer.on("tileload", () => { loaded += 1; status.dataset.tilesLoaded = loaded; show(); });
    layer.on("tileerror", () => { failed += 1; status.dataset.tilesFailed = failed; show(); });
    return layer;
  }
  function show() {
    status.textContent = "tiles loaded: " + loaded + (failed ? ", failed: " + failed : "");
  }
  function tiles(id, pane) {
    const opts = {maxZoom: 20, bounds: bounds, keepBuffer: 1, opacity: 1};
    if (pane) opts.pane = pane;
    return count(L.tileLayer("/tiles/" + encodeURIComponent(id) + "/{z}/{x}/{y}.png", opts));
  }
  function layerInfo(id) { return info.rasters.find((r) => r.id === id); }

  function legend() {
    const box = $("pf-legend");
    box.replaceChildren();
    for (const id of [top && top.pfId, under && under.pfId].filter(Boolean)) {
      const r = layerInfo(id);
      const h = document.createElement("h2");
      h.textContent = r.title + (r.units && r.units !== "class" ? " [" + r.units + "]" : "");
      box.appendChild(h);
      if (r.legend.ramp) {
        const bar = document.createElement("div");
        bar.className = "pf-ramp";
        bar.style.background = "linear-gradient(to right," + r.legend.ramp.join(",") + ")";
        const ticks = document.createElement("div");
        ticks.className = "pf-ticks";
        for (const v of [r.legend.min, (r.legend.min + r.legend.max) / 2, r.legend.max]) {
          const s = document.createElement("span");
          s.textContent = +v.toFixed(3);
          ticks.appendChild(s);
        }
        box.append(bar, ticks);
      } else if (r.legend.classes) {
        for (const c of r.legend.classes) {
          const row = document.createElement("div");
          const sw = document.createElement("span");
          sw.className = "pf-class";
          sw.style.background = c.colour;
          row.append(sw, document.createTextNode(c.value + ": " + c.label));
          box.appendChild(row);
        }
      }
    }
  }

  function clip() {
    if (!under) return;
    const nw = map.containerPointToLayerPoint([0, 0]);
    const se = map.containerPointToLayerPoint(map.getSize());
    const x = nw.x + (se.x - nw.x) * parseFloat($("pf-swipe").value);
    comparePane.style.clip = "rect(" + [nw.y, se.x, se.y, x].map((v) => v + "px").join(",") + ")";
  }

  function setLayer(id) {
    if (top) map.removeLayer(top);
    top = tiles(id).setOpacity(parseFloat($("pf-opacity").value)).addTo(map);
    top.pfId = id;
    $("pf-layer").value = id;
    legend();
  }
  function setCompare(id) {
    if (under) map.removeLayer(under);
    under = null;
    comparePane.style.clip = "";
    $("pf-swipe-box").hidden = !id;
    if (id) {
      under = tiles(id, "pf-compare").setOpacity(parseFloat($("pf-opacity").value)).addTo(map);
      under.pfId = id;
      clip();
    }
    $("pf-compare").value = id || "";
    legend();
  }

  function fmt(row) {
    if (row.value === null) return "–";
    if (row.class !== undefined) return row.value + (row.class ? " (" + row.class + ")" : "");
    const v = row.value;
    const s = Math.abs(v) >= 100 ? v.toFixed(1) : v.toFixed(3);
    return row.units && row.units !== "-" ? s + " " + row.units : s;
  }
  async function showValuesAt(lat, lon) {
    status.dataset.values = "loading";
    if (marker) map.removeLayer(marker);
    marker = L.circleMarker([lat, lon], {radius: 6, color: "#000", weight: 2, fill: false})
      .addTo(map);
    const res = await fetch("/api/point?lon=" + lon + "&lat=" + lat);
    if (!res.ok) { status.dataset.values = "error " + res.status; return null; }
    const js = await res.json();
    const body = $("pf-values").tBodies[0];
    body.replaceChildren();
    const head = body.insertRow();
    head.insertCell().textContent = "point";
    head.insertCell().textContent = lat.toFixed(5) + ", " + lon.toFixed(5);
    for (const row of js.values) {
      const tr = body.insertRow();
      tr.dataset.id = row.id;
      tr.dataset.value = row.value === null ? "" : String(row.value);
      tr.insertCell().textContent = row.title;
      const td = tr.insertCell();
      td.className = "v";
      td.textContent = fmt(row);
    }
    $("pf-hint").hidden = true;
    status.dataset.values = "shown";
    return js;
  }
  map.on("click", (e) => { showValuesAt(e.latlng.lat, e.latlng.lng); });
  map.on("move zoom resize", clip);

  const VECTOR_STYLE = {
    labels: {colour: (p) => (p.label === 1 ? "#ffd92f" : "#e7298a")},
    kinematics: {colour: (p) => ({active: "#b2182b", transitional: "#ef8a62",
                                   relict: "#4393c3"}[p.kin_activity] || "#7f7f7f")},
    blocks: {colour: () => "#444444"},
  };
  function popup(p) {
    const t = document.createElement("table");
    for (const [k, v] of Object.entries(p)) {
      const tr = t.insertRow();
      tr.insertCell().textContent = k;
      tr.insertCell().textContent = v === null ? "–" : String(v);
    }
    return t;
  }
  async function vector(v) {
    const res = await fetch("/vectors/" + encodeURIComponent(v.id) + ".geojson");
    if (!res.ok) throw new Error("vector " + v.id + ": " + res.status);
    const gj = await res.json();
    const colour = VECTOR_STYLE[v.kind].colour;
    return L.geoJSON(gj, {
      pointToLayer: (f, ll) => L.circleMarker(ll, {radius: 4, weight: 1, color: "#333",
        fillColor: colour(f.properties), fillOpacity: 0.9}),
      style: (f) => ({color: colour(f.properties), weight: 1.5,
                      fillOpacity: v.kind === "blocks" ? 0 : 0.35,
                      dashArray: v.kind === "blocks" ? "6 4" : null}),
      onEachFeature: (f, l) => l.bindPopup(() => popup(f.properties)),
    });
  }

  async function start() {
    const res = await fetch("/api/layers");
    info = await res.json();
    $("pf-title").textContent = "permafrost run: " + info.name;
    const [w, s, e, n] = info.bounds;
    bounds = L.latLngBounds([s, w], [n, e]);
    map.fitBounds(bounds);
    if (info.hillshade) tiles("dem").addTo(map).bringToBack();
    for (const sel of [$("pf-layer"), $("pf-compare")]) {
      let group = null, og = null;
      for (const r of info.rasters) {
        if (r.group !== group) {
          og = document.createElement("optgroup");
          og.label = group = r.group;
          sel.appendChild(og);
        }
        og.appendChild(new Option(r.title, r.id));
      }
    }
    $("pf-notes").textContent = info.notes.concat(info.refused).join("; ");
    const want = params.get("layer");
    setLayer(want && layerInfo(want) ? want : info.rasters[0].id);
    const cmp = params.get("compare");
    if (cmp && layerInfo(cmp)) setCompare(cmp);
    $("pf-layer").addEventListener("change", (ev) => setLayer(ev.target.value));
    $("pf-compare").addEventListener("change", (ev) => setCompare(ev.target.value));
    $("pf-swipe").addEventListener("input", clip);
    $("pf-opacity").addEventListener("input", (ev) => {
      for (const l of [top, under]) if (l) l.setOpacity(parseFloat(ev.target.value));
    });
    const wanted = (params.get("vectors") || "").split(",");
    const shown = [];
    for (const v of info.vectors) {
      const lab = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox";
      lab.append(box, document.createTextNode(" " + v.title));
      $("pf-vectors").appendChild(lab);
      let layer = null;
      const toggle = async () => {
        if (box.checked) {
          layer = layer || await vector(v);
          layer.addTo(map);
        } else if (layer) {
          map.removeLayer(layer);
        }
      };
      box.addEventListener("change", toggle);
      if (wanted.includes(v.id)) {
        box.checked = true;
        shown.push(toggle());
      }
    }
    await Promise.all(shown);
    const at = params.get("at");
    if (at) {
      const [lat, lon] = at.split(",").map(Number);
      map.fire("click", {latlng: L.latLng(lat, lon)});
    }
  }
  const ready = start().catch((err) => {
    status.dataset.values = "error";
    status.textContent = "could not start the viewer: " + err.message;
    throw err;
  });
  window.pfViewer = {map, ready, showValuesAt, setLayer, setCompare};
})();
