-- A release whose migration fails: the column it indexes does not exist.
CREATE UNIQUE INDEX "Product_sku_key" ON "Product"("sku");
