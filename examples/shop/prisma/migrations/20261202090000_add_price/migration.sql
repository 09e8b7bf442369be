-- AlterTable: expand only, so v1 keeps working on this schema while both colours run.
ALTER TABLE "Product" ADD COLUMN "priceCents" INTEGER NOT NULL DEFAULT 0;

UPDATE "Product" SET "priceCents" = 1200 WHERE "name" = 'teapot';
