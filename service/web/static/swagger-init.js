// Swagger UI's start-up, as a file: the docs page's CSP allows no inline script.
"use strict";
window.ui = SwaggerUIBundle({
  url: document.getElementById("swagger-ui").dataset.url, // /openapi.json, named by the page
  dom_id: "#swagger-ui",
  deepLinking: true,
  // The validator badge would ask validator.swagger.io about our document: never leave this origin.
  validatorUrl: null,
});
