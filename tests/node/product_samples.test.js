// Google's Node.js product and inventory samples (nodejs-retail
// samples/interactive-tutorials/product/ and setup/setup-cleanup.js) repeated with
// the official client against a running Footfall, with data of their shape (our
// own), asserting what their tests assert. Run by tests/node/test_node_product_samples.py,
// which starts the server and sets FOOTFALL_GRPC_ADDRESS, FOOTFALL_BRANCH (a
// catalog's branches/default_branch) and FOOTFALL_GCS_URI (a products file).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const {v2} = require('@google-cloud/retail');
const {grpc} = require('google-gax');

const address = process.env.FOOTFALL_GRPC_ADDRESS;
const parent = process.env.FOOTFALL_BRANCH;
const gcsUri = process.env.FOOTFALL_GCS_URI;
assert.ok(address && parent && gcsUri, 'set FOOTFALL_GRPC_ADDRESS, _BRANCH and _GCS_URI');
const separator = address.lastIndexOf(':');
const storedUnder = parent.replace(/\/branches\/default_branch$/, '/branches/0');

const client = new v2.ProductServiceClient({
  apiEndpoint: address.slice(0, separator),
  port: Number(address.slice(separator + 1)),
  sslCreds: grpc.credentials.createInsecure(),
});
const deadline = {timeout: 10000};

test.after(() => client.close());

// The samples' ids: Math.random() in base 36, upper case.
const newId = () => Math.random().toString(36).slice(2).toUpperCase();

// setup-cleanup.js createProduct: places only when asked for.
async function createProduct(productId, withPlaces = false) {
  const [created] = await client.createProduct({
    parent,
    productId,
    product: {
      title: 'Pocket Radio',
      type: 'PRIMARY',
      categories: ['Audio'],
      brands: ['Footfall'],
      fulfillmentInfo: withPlaces
        ? [{type: 'same-day-delivery', placeIds: ['store1', 'store2', 'store3']}]
        : [],
      priceInfo: {price: 28.0, originalPrice: 33.5, currencyCode: 'USD'},
      availability: 'IN_STOCK',
    },
  }, deadline);
  assert.equal(created.id, productId);
  assert.equal(created.name, `${storedUnder}/products/${productId}`);
  return created;
}

// getProduct as the samples print it: JSON.stringify of the answer, read back.
async function productAsPrinted(name) {
  const [product] = await client.getProduct({name}, deadline);
  return JSON.parse(JSON.stringify(product));
}

async function deleteAndCheckGone(name) {
  await client.deleteProduct({name}, deadline);
  await assert.rejects(client.getProduct({name}, deadline),
    (error) => error.code === grpc.status.NOT_FOUND);
}

test('set-inventory.js: no set_mask sets all four inventory fields', async () => {
  const created = await createProduct(newId());
  const [operation] = await client.setInventory({
    inventory: {
      id: created.id,
      name: created.name,
      priceInfo: {price: 12.0, originalPrice: 16.0, cost: 6.0, currencyCode: 'USD'},
      fulfillmentInfo: [{type: 'same-day-delivery', placeIds: ['store3', 'store4']}],
      availableQuantity: {value: 2},
      availability: 'IN_STOCK',
    },
    allowMissing: true,
  }, deadline);
  await operation.promise();
  const updated = await productAsPrinted(created.name);
  assert.equal(updated.priceInfo.price, 12.0);
  assert.equal(updated.priceInfo.originalPrice, 16.0);
  assert.equal(updated.priceInfo.cost, 6.0);
  assert.equal(updated.priceInfo.currencyCode, 'USD');
  assert.equal(updated.fulfillmentInfo.length, 1);
  assert.deepEqual(Object.keys(updated.fulfillmentInfo[0]).sort(), ['placeIds', 'type']);
  assert.equal(updated.fulfillmentInfo[0].type, 'same-day-delivery');
  assert.deepEqual(updated.fulfillmentInfo[0].placeIds, ['store3', 'store4']);
  assert.deepEqual(updated.availableQuantity, {value: 2});
  assert.equal(updated.availability, 'IN_STOCK');
  await deleteAndCheckGone(created.name);
});

test('add-fulfillment-places.js and the older ship-to-store one', async () => {
  const created = await createProduct(newId());
  for (const type of ['same-day-delivery', 'ship-to-store']) {
    const [operation] = await client.addFulfillmentPlaces({
      product: created.name,
      type,
      placeIds: ['store1', 'store2', 'store3'],
      allowMissing: true,
    }, deadline);
    await operation.promise();
  }
  const updated = await productAsPrinted(created.name);
  // (in no order the samples rely on)
  assert.deepEqual(updated.fulfillmentInfo.map((info) => [info.type, info.placeIds]).sort(), [
    ['same-day-delivery', ['store1', 'store2', 'store3']],
    ['ship-to-store', ['store1', 'store2', 'store3']],
  ]);
  await deleteAndCheckGone(created.name);
});

test('remove-fulfillment-places.js: store1 leaves setup\'s same-day places', async () => {
  const created = await createProduct(newId(), true);
  const [operation] = await client.removeFulfillmentPlaces({
    product: created.name,
    type: 'same-day-delivery',
    placeIds: ['store1'],
  }, deadline);
  await operation.promise();
  const updated = await productAsPrinted(created.name);
  assert.deepEqual(updated.fulfillmentInfo,
    [{type: 'same-day-delivery', placeIds: ['store2', 'store3']}]);
  await deleteAndCheckGone(created.name);
});

test('crud-product.js: create, get, update with allowMissing, delete', async () => {
  const productId = newId();
  const name = `${parent}/products/${productId}`;
  await createProduct(productId);
  const [got] = await client.getProduct({name}, deadline);
  assert.equal(got.title, 'Pocket Radio');
  const [updated] = await client.updateProduct({
    product: {
      name,
      title: 'Updated Pocket Radio',
      type: 'PRIMARY',
      categories: ['Updated Audio'],
      brands: ['Updated Footfall'],
      priceInfo: {price: 20.0, originalPrice: 25.5, currencyCode: 'EUR'},
      availability: 'OUT_OF_STOCK',
    },
    allowMissing: true,
  }, deadline);
  const printed = JSON.parse(JSON.stringify(updated));
  assert.equal(printed.title, 'Updated Pocket Radio');
  assert.deepEqual(printed.brands, ['Updated Footfall']);
  // (the client fills every field of a message it answers: cost 0, times null)
  assert.deepEqual([printed.priceInfo.price, printed.priceInfo.originalPrice,
    printed.priceInfo.currencyCode], [20, 25.5, 'EUR']);
  assert.equal(printed.availability, 'OUT_OF_STOCK');
  await deleteAndCheckGone(name);
});

test('import-products-inline-source.js: two products, its misspelt keys dropped', async () => {
  const product = (title, colors, places) => ({
    id: newId(),
    title,
    uri: `https://shop.example.com/${encodeURIComponent(title)}`,
    brands: ['Footfall'],
    categories: ['Audio'],
    priceInfo: {price: 16.0, originalPrice: 45.0, cost: 12.0, currencyCode: 'USD'},
    colorInfo: {colorFamilies: ['Grey'], colors},
    // The sample's own spellings: protobuf.js drops keys the message has not.
    fulFillmentInfo: {type: 'pickup-in-store', placeIds: places},
    retrievable_fields: {paths: ['title', 'categories', 'price_info', 'color_info']},
  });
  const products = [product('Clip Speaker', ['Slate', 'Ash'], ['store1', 'store2']),
    product('Desk Speaker', ['Charcoal'], ['store2', 'store3'])];
  const [operation] = await client.importProducts({
    parent,
    inputConfig: {productInlineSource: {products}},
  }, deadline);
  assert.match(operation.name, /\/branches\/0\/operations\/import-products-/);
  const [response, metadata] = await operation.promise();
  assert.equal(Number(metadata.successCount), 2);
  assert.equal(Number(metadata.failureCount || 0), 0);
  assert.deepEqual(response.errorSamples, []);
  for (const {id} of products) {  // setup-cleanup.js deleteProductsByIds
    await deleteAndCheckGone(`${parent}/products/${id}`);
  }
});

test('import-products-gcs.js: data_schema "product", errors_config', async () => {
  const [operation] = await client.importProducts({
    parent,
    inputConfig: {gcsSource: {inputUris: [gcsUri], dataSchema: 'product'}},
    errorsConfig: {gcsPrefix: gcsUri.replace(/\/[^/]*$/, '/error')},
  }, deadline);
  const [response, metadata] = await operation.promise();
  assert.equal(Number(metadata.successCount), 3);
  assert.equal(Number(metadata.failureCount || 0), 0);
  assert.deepEqual(response.errorSamples, []);
  // get-products-list.js: every product of the branch, through listProductsAsync
  // (those of the tests before are deleted, unless one failed)
  const listed = [];
  for await (const product of client.listProductsAsync({parent}, deadline)) {
    listed.push(product.name);
  }
  assert.deepEqual(listed.filter((name) => name.includes('/NODEGCS')),
    ['NODEGCS001', 'NODEGCS002', 'NODEGCS003'].map((id) => `${storedUnder}/products/${id}`));
});
