// #products: the products of the catalog's default branch, page by page.

import {call} from "./api.js";
import {failure, h} from "./dom.js";

function price(product) {
  const info = product.priceInfo;
  return info?.price === undefined ? "" : `${info.price} ${info.currencyCode || ""}`.trim();
}

export function render(main, ctx) {
  main.append(h("h2", {}, "Products"));
  if (!ctx.catalog) {
    main.append(h("p", {class: "hint"}, "No catalog holds events yet."));
    return;
  }
  const branch = `${ctx.catalog}/branches/default_branch`;
  main.append(h("p", {class: "hint"}, `The products of ${branch}; events join with them.`));
  const rows = h("tbody", {});
  const more = h("button", {type: "button", hidden: true}, "More");
  const results = h("div", {});
  let pageToken = "";
  const load = async () => {
    more.disabled = true;
    try {
      const page = await call(`/v2/${branch}/products`,
        {query: {pageSize: 100, pageToken}, signal: ctx.signal});
      for (const p of page.products || []) {
        rows.append(h("tr", {}, h("td", {}, p.id || p.name.split("/").pop()),
          h("td", {}, p.title || ""), h("td", {}, (p.categories || []).join(", ")),
          h("td", {}, price(p)), h("td", {}, p.availability || "")));
      }
      pageToken = page.nextPageToken || "";
      more.hidden = !pageToken;
      if (!rows.children.length) results.append(h("p", {class: "hint"}, "No product yet."));
    } catch (error) {
      if (!ctx.signal.aborted) results.append(failure(error));
    }
    more.disabled = false;
  };
  more.addEventListener("click", load);
  main.append(h("div", {class: "table", tabindex: 0, role: "region", "aria-label": "Products"},
    h("table", {}, h("thead", {}, h("tr", {}, ["Id", "Title", "Categories", "Price", "Availability"]
      .map((t) => h("th", {scope: "col"}, t)))), rows)), more, results);
  load();
}
