// Large reports (jobs.report_html._DeferredImages): each picture is kept once in <template id="rs-images">;
// a card's pictures are filled in as it nears the viewport, then the rest a few cards at a time, so that
// opening the page decodes only what is shown first and the filters, flicker and self-check see every picture.
(function(){
  var tpl = document.getElementById('rs-images');
  if (!tpl) return;
  var pictures = tpl.content;
  function fill(root){
    Array.prototype.forEach.call(root.querySelectorAll('img[data-img]'), function(img){
      var source = pictures.getElementById('rsimg-' + img.getAttribute('data-img'));
      img.removeAttribute('data-img');
      if (source) img.setAttribute('src', source.getAttribute('src'));
    });
  }
  var cards = Array.prototype.slice.call(document.querySelectorAll('article.card'));
  if ('IntersectionObserver' in window) {
    var seen = new IntersectionObserver(function(entries){
      entries.forEach(function(e){ if (e.isIntersecting) { fill(e.target); seen.unobserve(e.target); } });
    }, {rootMargin: '1500px 0px'});
    cards.forEach(function(card){ seen.observe(card); });
  }
  function settled(){
    var waiting = Array.prototype.filter.call(document.images, function(img){ return !img.complete; });
    var left = waiting.length;
    function one(){ left -= 1; if (left <= 0) finish(); }
    if (!left) { finish(); return; }
    waiting.forEach(function(img){ img.addEventListener('load', one); img.addEventListener('error', one); });
  }
  function finish(){
    if (window.reusescanCountImages) window.reusescanCountImages();
    document.body.setAttribute('data-images-filled', '1');
  }
  var next = 0;
  function step(){
    var end = Math.min(cards.length, next + 40);
    for (; next < end; next++) fill(cards[next]);
    if (next < cards.length) setTimeout(step, 20); else settled();
  }
  setTimeout(step, 100);
})();
