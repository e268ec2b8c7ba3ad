// Large reports (jobs.report_html._DeferredImages): each picture is kept once in <template id="rs-images">;
// a card's pictures are filled in as it nears the viewport, then the rest a few cards at a time, so that
// opening the page decodes only what is shown first and the filters, flicker and self-check see every picture.
(function(){
  var tpl = document.getElementById('rs-images');
  if (!tpl) return;
  var pictures = tpl.content;
  // [a, b, c, d, e, f] of canvas.setTransform for each D4 view (embedder.d4 names), on a w x h picture:
  // the picture turned/mirrored exactly as `apply_transform` does (rot90 = counter-clockwise, as numpy.rot90).
  function d4(name, w, h){
    switch (name) {
      case 'rot90': return [[0, -1, 1, 0, 0, w], h, w];
      case 'rot180': return [[-1, 0, 0, -1, w, h], w, h];
      case 'rot270': return [[0, 1, -1, 0, h, 0], h, w];
      case 'flip_h': return [[-1, 0, 0, 1, w, 0], w, h];
      case 'flip_v': return [[1, 0, 0, -1, 0, h], w, h];
      case 'transpose': return [[0, 1, 1, 0, 0, 0], h, w];
      case 'transverse': return [[0, -1, -1, 0, h, w], h, w];
      default: return [[1, 0, 0, 1, 0, 0], w, h];
    }
  }
  function turned(img, src, name){
    var pic = new Image();
    pic.onload = function(){
      var m = d4(name, pic.naturalWidth, pic.naturalHeight), canvas = document.createElement('canvas');
      canvas.width = m[1]; canvas.height = m[2];
      var ctx = canvas.getContext('2d');
      ctx.setTransform.apply(ctx, m[0]);
      ctx.drawImage(pic, 0, 0);
      img.setAttribute('src', canvas.toDataURL('image/png'));
    };
    pic.onerror = function(){ img.setAttribute('src', src); };
    pic.src = src;
  }
  var pending = 0;
  function fill(root){
    Array.prototype.forEach.call(root.querySelectorAll('img[data-img]'), function(img){
      var source = pictures.getElementById('rsimg-' + img.getAttribute('data-img'));
      var name = img.getAttribute('data-t');
      img.removeAttribute('data-img');
      if (!source) return;
      if (name) { pending++; img.addEventListener('load', function(){ pending--; }, {once: true}); turned(img, source.getAttribute('src'), name); }
      else img.setAttribute('src', source.getAttribute('src'));
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
    if (pending > 0) { setTimeout(settled, 50); return; }  // turned pictures still being drawn
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
