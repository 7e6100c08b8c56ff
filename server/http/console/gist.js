// What a user event is about, read from the event alone: a few words for its line
// in the feed (a search's query, the products viewed or added, a purchase's revenue),
// and the facts that head its page (a purchase of 1,000 lines had its revenue
// after 1,000 lines of JSON).

import {count, counted, money} from "./format.js";

const SHORT = 40;  // characters of a query or an id on a feed's line
const NAMED = 2;  // products a feed's line names; the others are counted

/** `text` cut to `size` characters, an ellipsis saying so. */
const cut = (text, size = SHORT) => (text.length > size ? `${text.slice(0, size - 1)}…` : text);

/** An amount with its currency; one stored without (not Google's rule) as a number. */
const amount = (value, currency) => (currency ? money(value, currency)
  : Number(value || 0).toLocaleString("en-US"));

/** A product line's quantity (Google's: 1 when absent, as the insights count it). */
const quantity = (detail) => Number(detail.quantity ?? 1);

function categories(e) {
  const all = e.pageCategories || [];
  return all.length ? cut(all.join(", ")) : "";
}

/** "tent-2p ×2, stove-1 +3 more" */
function productWords(details) {
  const named = details.slice(0, NAMED).map((d) =>
    cut(d.product?.id || "(no id)") + (quantity(d) > 1 ? ` ×${count(quantity(d))}` : ""));
  const more = details.length - named.length;
  return named.join(", ") + (more > 0 ? ` +${count(more)} more` : "");
}

/** The revenue of a purchase-complete, and its tax and cost when given. */
function revenue(t) {
  const extra = ["tax", "cost"].filter((f) => t[f] !== undefined)
    .map((f) => `${f} ${amount(t[f], t.currencyCode)}`);
  return amount(t.revenue, t.currencyCode) + (extra.length ? ` (${extra.join(", ")})` : "");
}

/** The few words that tell `e` (a UserEvent) from others of its type, or "". */
export function gist(e) {
  const details = e.productDetails || [];
  switch (e.eventType) {
    case "search":
      return e.searchQuery ? `“${cut(e.searchQuery)}”` : categories(e);
    case "category-page-view":
      return categories(e);
    case "purchase-complete":
      return [e.purchaseTransaction ? amount(e.purchaseTransaction.revenue,
        e.purchaseTransaction.currencyCode) : "", details.length > 1
        ? counted(details.length, "line") : productWords(details)].filter(Boolean).join(" · ");
    case "completion":
      return e.completionDetail?.selectedSuggestion
        ? `“${cut(e.completionDetail.selectedSuggestion)}”` : "";
    default:
      return productWords(details);
  }
}

/** The products of `details`, counted, the first few named. */
function productFacts(details) {
  const ids = new Set(details.map((d) => d.product?.id));
  const units = details.reduce((n, d) => n + quantity(d), 0);
  return [
    ["Products", `${counted(details.length, "line")}, ${counted(ids.size, "product")}: ` +
      productWords(details)],
    ["Quantity", `${counted(units, "unit")} in all`],
  ];
}

/** The price × quantity of the lines, per currency, and the lines that name no price. */
function linesTotal(details) {
  const sums = new Map();
  let unpriced = 0;
  for (const d of details) {
    const price = d.product?.priceInfo;
    if (!price?.price) {
      unpriced += 1;
      continue;
    }
    const currency = price.currencyCode || "USD";  // (Google's default)
    sums.set(currency, (sums.get(currency) || 0) + price.price * quantity(d));
  }
  const shown = [...sums].map(([currency, sum]) => money(sum, currency));
  if (unpriced) shown.push(`${counted(unpriced, "line")} without a price`);
  return shown.join("; ");
}

/** [term, description] pairs that sum `e` (a UserEvent) up: what a person looks for
 *  first in an event of its type, computed from the event. */
export function summary(e) {
  const details = e.productDetails || [];
  const facts = [["Visitor", e.visitorId || "(none)"]];
  if (e.userInfo?.userId) facts.push(["User", e.userInfo.userId]);
  const t = e.purchaseTransaction;
  if (e.eventType === "purchase-complete" && t) {
    facts.push(["Revenue", revenue(t)]);
    if (t.id) facts.push(["Order", t.id]);
  }
  if (e.searchQuery !== undefined) facts.push(["Search query", `“${e.searchQuery}”`]);
  if (e.pageCategories?.length) facts.push(["Page categories", e.pageCategories.join(", ")]);
  if (e.filter) facts.push(["Filter", e.filter]);
  if (e.orderBy) facts.push(["Order by", e.orderBy]);
  if (e.completionDetail?.selectedSuggestion) {
    facts.push(["Suggestion chosen", `“${e.completionDetail.selectedSuggestion}”`]);
  }
  if (details.length) facts.push(...productFacts(details));
  if (e.eventType === "purchase-complete" && details.length) {
    facts.push(["Price × quantity", linesTotal(details)]);
  }
  if (e.cartId) facts.push(["Cart", e.cartId]);
  return facts;
}
