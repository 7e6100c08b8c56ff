// #products: the products of the catalog's default branch, page by page.

import {call} from "./api.js";
import {h, noCatalog, paged, table} from "./dom.js";
import {money} from "./format.js";
import {route} from "./names.js";

function price(product) {
  const info = product.priceInfo;
  if (info?.price === undefined) return "";
  const stored = Number(info.price);
  const code = info.currencyCode || "";
  // In the currency's minor unit, unless that rounds what is stored (1234.5 JPY showed
  // as "1,235 JPY": insights round sums, a product's page shows what is there).
  const shown = money(stored, code).trim();
  return Number(shown.replace(/[^\d.]/g, "")) === stored ? shown
    : `${stored.toLocaleString("en-US", {maximumFractionDigits: 20})} ${code}`.trim();
}

// What the inventory RPCs set (SetInventory, Add/RemoveFulfillmentPlaces, the local
// inventories): a product's page showed none of it, so an inventory update could not be
// seen anywhere in the console.
function stock(product) {
  const parts = [];
  if (product.availableQuantity !== undefined) {
    parts.push(`${Number(product.availableQuantity).toLocaleString("en-US")} available`);
  }
  for (const {type, placeIds} of product.fulfillmentInfo || []) {
    const count = (placeIds || []).length;
    parts.push(`${type}: ${count} ${count === 1 ? "place" : "places"}`);
  }
  const local = (product.localInventories || []).length;
  if (local) parts.push(`${local} local ${local === 1 ? "inventory" : "inventories"}`);
  return parts.join("; ");
}

export function render(main, ctx) {
  main.append(h("h2", {}, "Products"));
  if (!ctx.catalog) {
    main.append(noCatalog(ctx.tenants));
    return;
  }
  const branch = `${ctx.catalog}/branches/default_branch`;
  main.append(h("p", {class: "hint"}, `The products of ${branch}; events join with them.`));
  const found = table("Products",
    ["Id", "Title", "Categories", "Price", "Availability", "Stock"], "", [3], [0]);
  const results = h("div", {});
  const more = paged(async (pageToken) => {
    const page = await call(route`/v2/${branch}/products`,
      // ListProducts' default fields leave out categories, availability and the stock
      {query: {pageSize: 100, pageToken, readMask: "id,title,categories,priceInfo,"
               + "availability,availableQuantity,fulfillmentInfo,localInventories"},
       signal: ctx.signal});
    for (const p of page.products || []) {
      found.body.append(found.row([p.id || p.name.split("/").pop(), p.title || "",
        // (one a line: joined by ", ", two categories of "A > B" read as one path, and
        // a category holding a comma as two)
        h("div", {class: "categories"}, (p.categories || []).map((c) => h("div", {}, c))),
        price(p),
        // (proto3 JSON leaves an unset one out: the cell was empty, though purges and
        // exports count it as IN_STOCK, Google's default)
        p.availability || h("span", {class: "hint"}, "unset (IN_STOCK)"), stock(p)]));
    }
    if (!found.body.children.length) results.append(h("p", {class: "hint"}, "No product yet."));
    return page.nextPageToken || "";
  }, ctx.signal, results);
  main.append(found.element, more, results);
}
