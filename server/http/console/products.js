// #products: the products of the catalog's default branch, page by page.

import {call} from "./api.js";
import {failure, h, table} from "./dom.js";

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
  const found = table("Products", ["Id", "Title", "Categories", "Price", "Availability"]);
  const more = h("button", {type: "button", hidden: true}, "More");
  const results = h("div", {});
  let pageToken = "";
  const load = async () => {
    more.disabled = true;
    try {
      const page = await call(`/v2/${branch}/products`,
        {query: {pageSize: 100, pageToken}, signal: ctx.signal});
      for (const p of page.products || []) {
        found.body.append(found.row([p.id || p.name.split("/").pop(), p.title || "",
          (p.categories || []).join(", "), price(p), p.availability || ""]));
      }
      pageToken = page.nextPageToken || "";
      more.hidden = !pageToken;
      if (!found.body.children.length) results.append(h("p", {class: "hint"}, "No product yet."));
    } catch (error) {
      if (!ctx.signal.aborted) results.append(failure(error));
    }
    more.disabled = false;
  };
  more.addEventListener("click", load);
  main.append(found.element, more, results);
  load();
}
